import { describeSpine } from './spine-suite.js';

describeSpine('wal2json');
