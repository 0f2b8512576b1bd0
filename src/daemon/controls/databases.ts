// Databases are not attached yet (cluster-wide databases come with the store); the
// database map is empty and lookups of a database id fail as for an unknown id.
import { ControlCode } from '../../protocol';
import type { HandlerTable } from './types';

export const databaseControls: HandlerTable = {
  [ControlCode.GET_DBMAP]: () => ({ reply: [] }),
};
