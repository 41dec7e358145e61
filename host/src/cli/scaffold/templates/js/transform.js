// @NAME@: an rmq-openmldb transform. It upper-cases the string columns named
// in its `fields` config key and passes every other column through. Replace
// `processRow` with your own logic; `rmq-openmldb plugin build` makes the
// component, `rmq-openmldb plugin test` runs it on sample data.
//
// WIT in JavaScript: records are objects with camelCase fields, variants
// are `{tag, val}`, enums are their WIT names as strings, and a thrown
// `{kind, message}` becomes the `plugin-error` of the call.

// Indexes of the columns to upper-case, set by `init`.
let fields = [];

// The transform itself: change `row.cells` in place, in column order.
function processRow(row) {
  for (const index of fields) {
    const cell = row.cells[index];
    if (cell.tag === 'string') row.cells[index] = { tag: 'string', val: cell.val.toUpperCase() };
  }
  return row;
}

export const transform = {
  // `output` is the schema this transform must produce; the answer is the
  // schema it needs as input (here the same).
  init(config, output) {
    const settings = new Map(config);
    const names = (settings.get('fields') ?? '').split(',').map((n) => n.trim()).filter((n) => n);
    fields = names.map((name) => {
      const index = output.findIndex((column) => column.name === name);
      if (index < 0) throw { kind: 'invalid-config', message: `config key "fields": the table has no column "${name}"` };
      if (output[index].type !== 'string') {
        throw { kind: 'invalid-config', message: `config key "fields": column "${name}" is not a string column` };
      }
      return index;
    });
    return { info: { name: '@NAME@', version: '0.1.0', maxBatch: undefined, needs: {} }, input: output };
  },

  process(batch) {
    return { rows: batch.rows.map(processRow), failures: [] };
  },
};
