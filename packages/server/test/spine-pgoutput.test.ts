import { describeSpine } from './spine-suite.js';

describeSpine('pgoutput');
