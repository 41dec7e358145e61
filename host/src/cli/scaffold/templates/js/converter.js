// @NAME@: an rmq-openmldb converter. It reads each message body as a plain
// JSON object and maps its fields to the table's columns by name (missing
// or null fields become NULL). Replace `convertBody` with your own format;
// `rmq-openmldb plugin build` makes the component, `rmq-openmldb plugin test`
// runs it on sample data.
//
// WIT in JavaScript: records are objects with camelCase fields, variants
// are `{tag, val}`, enums are their WIT names as strings, s64 values are
// BigInt, and a thrown `{kind, message}` becomes the `plugin-error` of the call.

// The table's columns, set by `init`.
let columns = [];

const INTEGERS = {
  smallint: [-(2n ** 15n), 2n ** 15n - 1n],
  int: [-(2n ** 31n), 2n ** 31n - 1n],
  bigint: [-(2n ** 63n), 2n ** 63n - 1n],
  timestamp: [0n, 2n ** 63n - 1n],
};

function rejected(kind, message) {
  return { rejected: true, kind, message };
}

// One JSON value into the cell of `column`, or a rejection naming field and value.
function convertValue(column, value) {
  if (value === null || value === undefined) {
    if (!column.nullable) throw rejected('missing-field', `field "${column.name}" is missing`);
    return { tag: 'null' };
  }
  const mismatch = rejected('type-mismatch', `field "${column.name}": value ${JSON.stringify(value)} does not fit a ${column.type} column`);
  switch (column.type) {
    case 'bool':
      if (typeof value !== 'boolean') throw mismatch;
      return { tag: 'bool', val: value };
    case 'smallint': case 'int': case 'bigint': case 'timestamp': {
      if (typeof value !== 'number' || !Number.isInteger(value)) throw mismatch;
      const big = BigInt(value);
      const [low, high] = INTEGERS[column.type];
      if (big < low || big > high) throw rejected('out-of-range', `field "${column.name}": ${value} is out of range`);
      // s64 crosses as BigInt, narrower integers as numbers.
      return { tag: column.type, val: column.type === 'bigint' || column.type === 'timestamp' ? big : value };
    }
    case 'float': case 'double':
      if (typeof value !== 'number') throw mismatch;
      return { tag: column.type, val: value };
    case 'string':
      if (typeof value !== 'string') throw mismatch;
      return { tag: 'string', val: value };
    default:
      throw mismatch;
  }
}

const decoder = new TextDecoder();

function convertBody(body) {
  let value;
  try {
    value = JSON.parse(decoder.decode(body));
  } catch (error) {
    throw rejected('decode', `the body is not JSON: ${error.message}`);
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw rejected('decode', 'the body is not a JSON object');
  }
  return columns.map((column) => convertValue(column, value[column.name]));
}

export const converter = {
  init(config, target) {
    columns = target.columns;
    return { name: '@NAME@', version: '0.1.0', maxBatch: undefined, needs: {} };
  },

  convert(batch) {
    const rows = [];
    const failures = [];
    batch.forEach((message, index) => {
      try {
        rows.push({ sourceIndex: index, cells: convertBody(message.body) });
      } catch (error) {
        if (!error.rejected) throw error;
        failures.push({ index, kind: error.kind, message: error.message });
      }
    });
    return { rows, failures };
  },

  inferSchema(config, sample) {
    throw { kind: 'schema-mismatch', message: 'plain JSON carries no schema: create the table first' };
  },
};
