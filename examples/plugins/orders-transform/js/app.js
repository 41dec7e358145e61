// orders-js: the orders example transform, in JavaScript.
//
// - masks the `card` column: every character but the last `keep` becomes '*';
// - derives `total` = `quantity` * `unit_price` (NULL when either is NULL);
// - drops orders whose `quantity` is zero or negative.
//
// Config: `keep` (default 4), the number of card characters left visible.
// Build with `rmq-openmldb plugin build`; the same transform exists in Rust,
// Python and C next to this folder, and CI checks all four write identical rows.

// Column positions, found by `init` (the schema is negotiated once per instance).
let layout = null;

function pluginError(kind, message) {
  // A thrown value becomes the `err` of the function's result.
  return { kind, message };
}

function findColumn(output, name, type) {
  const index = output.findIndex((column) => column.name === name);
  if (index < 0) throw pluginError('schema-mismatch', `the table has no column "${name}" (${type})`);
  if (output[index].type !== type) {
    throw pluginError('schema-mismatch', `column "${name}" must be ${type}, the table has ${output[index].type}`);
  }
  return index;
}

function mask(text, keep) {
  const chars = Array.from(text); // code points, as the other languages count
  const hidden = Math.max(chars.length - keep, 0);
  return '*'.repeat(hidden) + chars.slice(hidden).join('');
}

export const transform = {
  init(config, output) {
    const settings = new Map(config);
    const raw = settings.has('keep') ? settings.get('keep') : '4';
    if (!/^[0-9]+$/.test(raw)) {
      throw pluginError('invalid-config', `config key "keep": "${raw}" is not a non-negative integer`);
    }
    const total = findColumn(output, 'total', 'double');
    // Input columns are the output's without `total`: indexes after it shift by one.
    const shift = (i) => (i < total ? i : i - 1);
    layout = {
      keep: Number(raw),
      total,
      card: shift(findColumn(output, 'card', 'string')),
      quantity: shift(findColumn(output, 'quantity', 'int')),
      unitPrice: shift(findColumn(output, 'unit_price', 'double')),
    };
    return {
      info: { name: 'orders-js', version: '0.1.0', maxBatch: undefined, needs: {} },
      input: output.filter((_, i) => i !== total),
    };
  },

  process(batch) {
    const rows = [];
    for (const row of batch.rows) {
      const cells = row.cells;
      const quantity = cells[layout.quantity];
      const price = cells[layout.unitPrice];
      if (quantity.tag === 'int' && quantity.val <= 0) continue;
      const card = cells[layout.card];
      if (card.tag === 'string') cells[layout.card] = { tag: 'string', val: mask(card.val, layout.keep) };
      const total = quantity.tag === 'int' && price.tag === 'double'
        ? { tag: 'double', val: quantity.val * price.val }
        : { tag: 'null' };
      cells.splice(layout.total, 0, total);
      rows.push(row);
    }
    return { rows, failures: [] };
  },
};
