import { html, type SafeHtml } from '../html.js';
import { layout } from './layout.js';

/** The sign-in form; also the body of every 401, so a browser that lost its session lands here. */
export function loginPage(nonce: string, error?: string): SafeHtml {
  return layout(
    { title: 'Sign in', nonce, principal: null, notice: error === undefined ? undefined : { kind: 'error', text: error } },
    html`<form method="post" action="/console/login">
  <fieldset>
    <p><label>Your name (for the audit log) <input name="name" required maxlength="100" autocomplete="username"></label></p>
    <p><label>Console token <input name="token" type="password" required autocomplete="current-password"></label></p>
    <p><button>Sign in</button></p>
  </fieldset>
</form>`,
  );
}
