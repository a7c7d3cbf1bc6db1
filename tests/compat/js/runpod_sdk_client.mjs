// RunPod's JS SDK (runpod-sdk from npm), unmodified, against a runplane server: only its
// baseUrl is changed. Run by tests/compat/test_js_sdk.py:
//   node runpod_sdk_client.mjs <sdk dir> <base url>/v2 <api key> <sync endpoint> <gen endpoint>
// Prints one JSON line, prefixed "RESULT ", with what each call returned.
import path from "node:path";

const [sdkDir, baseUrl, apiKey, syncEp, genEp] = process.argv.slice(2);
const sdk = await import(path.join(sdkDir, "node_modules/runpod-sdk/dist/src/index.js"));
const runpod = sdk.default(apiKey, { baseUrl });
const out = {};

// runSync of a job longer than its first wait: /runsync?wait=3000 answers IN_PROGRESS, then
// the SDK loops on /status-sync (printing "<id>: <status>" each time) until the job ends.
const sync = runpod.endpoint(syncEp);
let t0 = Date.now();
out.runSync = await sync.runSync({ input: { sleep: 4 } }, 3000);
out.runSyncMs = Date.now() - t0;

// run + status.
const queued = await sync.run({ input: { a: 1 } });
out.run = queued;
t0 = Date.now();
let st = await sync.status(queued.id);
while (!st.completed && Date.now() - t0 < 30000) {
  await new Promise((resolve) => setTimeout(resolve, 200));
  st = await sync.status(queued.id);
}
out.status = st;

// cancel a long job.
const long = await sync.run({ input: { sleep: 60 } });
out.cancel = await sync.cancel(long.id);
out.cancelledStatus = await sync.status(long.id);

// stream a generator handler's chunks.
const gen = runpod.endpoint(genEp);
const streamed = await gen.run({ input: { n: 4 } });
out.stream = [];
for await (const chunk of gen.stream(streamed.id, 60000)) out.stream.push(chunk);

out.health = await sync.health();
console.log("RESULT " + JSON.stringify(out));
