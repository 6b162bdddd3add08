/** How walflow names a place in a JSON value in its messages: `$.order.id`, `$.items[2]`, `$["a key"]`. */
export function memberPath(parent: string, key: string): string {
  return /^[A-Za-z_$][\w$]*$/.test(key) ? `${parent}.${key}` : `${parent}[${JSON.stringify(key)}]`;
}

export function elementPath(parent: string, index: number): string {
  return `${parent}[${index}]`;
}
