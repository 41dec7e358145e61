// @NAME@: an rmq-openmldb sink. It writes each batch into the table the
// connector names, in the database its `connection.url` grants, with one
// INSERT per row; the host holds one transaction around the batch. (The
// built-in `mysql-sink` does the same with multi-row INSERTs, upserts and
// refused-row isolation; start from this to write somewhere else or
// differently.) `rmq-openmldb plugin build` makes the component and
// `rmq-openmldb plugin test` shows the statements it sends.
//
// WIT in JavaScript: records are objects with camelCase fields, variants
// are `{tag, val}`, enums are their WIT names as strings, s64 and u64 are
// BigInt, a thrown `{kind, message}` becomes the `plugin-error` of the
// call, and an import's error is thrown with the error as `payload`.

import { execute } from 'rmq-openmldb:plugin/sql@0.1.0';

// The INSERT statement for the table, set by `init`.
let statement = '';

const quote = (name) => '`' + name.replaceAll('`', '``') + '`';

function insertStatement(schema) {
  const names = schema.columns.map((column) => quote(column.name)).join(', ');
  const marks = schema.columns.map(() => '?').join(', ');
  return `INSERT INTO ${quote(schema.table)} (${names}) VALUES (${marks})`;
}

const DAY_MS = 86400000n;

// Epoch milliseconds (BigInt) as a UTC date-time: civil-from-days,
// proleptic Gregorian, exact for every s64.
function utc(ms) {
  let days = ms / DAY_MS;
  let inDay = ms % DAY_MS;
  if (inDay < 0n) {
    inDay += DAY_MS;
    days -= 1n;
  }
  const z = days + 719468n;
  const era = (z >= 0n ? z : z - 146096n) / 146097n;
  const doe = z - era * 146097n;
  const yoe = (doe - doe / 1460n + doe / 36524n - doe / 146096n) / 365n;
  const doy = doe - (365n * yoe + yoe / 4n - yoe / 100n);
  const mp = (5n * doy + 2n) / 153n;
  const day = doy - (153n * mp + 2n) / 5n + 1n;
  const month = mp < 10n ? mp + 3n : mp - 9n;
  const year = yoe + era * 400n + (month <= 2n ? 1n : 0n);
  if (year < -2147483648n || year > 2147483647n) throw new RangeError(`timestamp ${ms} is out of range`);
  const n = Number(inDay);
  return {
    date: { year: Number(year), month: Number(month), day: Number(day) },
    hour: Math.floor(n / 3600000),
    minute: Math.floor(n / 60000) % 60,
    second: Math.floor(n / 1000) % 60,
    microsecond: (n % 1000) * 1000,
  };
}

// A cell as a statement parameter.
function sqlValue(cell) {
  switch (cell.tag) {
    case 'null': return { tag: 'null' };
    case 'bool': return { tag: 'int', val: cell.val ? 1n : 0n };
    case 'smallint':
    case 'int': return { tag: 'int', val: BigInt(cell.val) };
    case 'bigint': return { tag: 'int', val: cell.val };
    case 'float': return { tag: 'float', val: cell.val };
    case 'double': return { tag: 'double', val: cell.val };
    case 'string': return { tag: 'text', val: cell.val };
    case 'date': return { tag: 'date', val: cell.val };
    case 'timestamp': return { tag: 'datetime', val: utc(cell.val) };
    default: throw new RangeError(`unknown cell ${cell.tag}`);
  }
}

export const sink = {
  // `schema` is the table as the database describes it; rows arrive in its
  // column order.
  init(config, schema) {
    statement = insertStatement(schema);
    return { name: '@NAME@', version: '0.1.0', maxBatch: undefined, needs: {} };
  },

  // Failures name rows that can never be written (the host dead-letters
  // them); a thrown error means nothing of the batch counts as written, and
  // the host retries it (retryable) or stops.
  write(batch) {
    const failures = [];
    const params = [];
    batch.rows.forEach((row, index) => {
      try {
        params.push(row.cells.map(sqlValue));
      } catch (error) {
        failures.push({ index, kind: 'invalid-value', message: String(error.message ?? error) });
      }
    });
    if (params.length > 0) {
      try {
        execute(statement, params);
      } catch (error) {
        const failure = error.payload ?? { kind: 'statement', message: String(error) };
        const kind = { connection: 'retryable', timeout: 'retryable', 'not-granted': 'invalid-config' }[failure.kind] ?? 'fatal';
        throw { kind, message: failure.message };
      }
    }
    return failures;
  },

  // `write`'s statements are already in the host's transaction; a sink that
  // buffers would write here.
  flush() {},
};
