// Run a TF.js graph model in its own runtime (tfjs-converter on the pure-JS CPU backend, the
// library @vladmandic/human runs it with) and write its raw outputs, for tools/convert_models.py.
//
// node tfjs_reference.cjs MODEL.json INPUT.f32 N,C,H,W OUTDIR
//   INPUT.f32: float32 little-endian, the exact tensor fed to the model (no preprocessing here),
//   run one image at a time (the graph is built for batch 1)
//   OUTDIR/outputs.json: [{name, shape, file}], each file float32 little-endian
// NODE_PATH must point at a node_modules holding @tensorflow/tfjs-{core,converter,backend-cpu}.
'use strict';
const fs = require('fs');
const path = require('path');
const tf = require('@tensorflow/tfjs-core');
require('@tensorflow/tfjs-backend-cpu');
const { loadGraphModel } = require('@tensorflow/tfjs-converter');

async function main() {
  const [modelJson, inputFile, shapeArg, outDir] = process.argv.slice(2);
  if (!outDir) throw new Error('usage: node tfjs_reference.cjs MODEL.json INPUT.f32 N,C,H,W OUTDIR');
  await tf.setBackend('cpu');
  const spec = JSON.parse(fs.readFileSync(modelJson, 'utf8'));
  const group = spec.weightsManifest[0];
  const bins = group.paths.map((p) => fs.readFileSync(path.join(path.dirname(modelJson), p)));
  const all = Buffer.concat(bins);
  const model = await loadGraphModel(tf.io.fromMemory({
    modelTopology: spec.modelTopology,
    weightSpecs: group.weights,
    weightData: all.buffer.slice(all.byteOffset, all.byteOffset + all.byteLength),
    format: spec.format,
    generatedBy: spec.generatedBy,
    convertedBy: spec.convertedBy,
    signature: spec.signature,
  }));
  const shape = shapeArg.split(',').map(Number);
  const raw = fs.readFileSync(inputFile);
  const data = new Float32Array(raw.buffer.slice(raw.byteOffset, raw.byteOffset + raw.byteLength));
  const names = model.outputs.map((o) => o.name);
  const per = shape.slice(1).reduce((a, b) => a * b, 1);
  const results = names.map(() => []);
  let outShapes = [];
  for (let n = 0; n < shape[0]; n += 1) { // one image at a time: the graph is built for batch 1
    const input = tf.tensor(data.subarray(n * per, (n + 1) * per), [1, ...shape.slice(1)], 'float32');
    let outs = model.execute(input, names);
    if (!Array.isArray(outs)) outs = [outs];
    outShapes = outs.map((t) => [shape[0], ...t.shape.slice(1)]);
    for (let i = 0; i < outs.length; i += 1) results[i].push(await outs[i].data());
    tf.dispose([input, ...outs]);
  }
  fs.mkdirSync(outDir, { recursive: true });
  const index = [];
  for (let i = 0; i < names.length; i += 1) {
    const file = `out${i}.f32`;
    const buf = Buffer.concat(results[i].map((v) => Buffer.from(v.buffer, v.byteOffset, v.byteLength)));
    fs.writeFileSync(path.join(outDir, file), buf);
    index.push({ name: names[i], shape: outShapes[i], file });
  }
  fs.writeFileSync(path.join(outDir, 'outputs.json'), JSON.stringify({ tfjs: tf.version_core, backend: tf.getBackend(), outputs: index }));
}

main().catch((err) => { console.error(err); process.exit(1); });
