// Validates KEDA objects (JSON array on stdin) with the validators @kubernetes-models/keda
// generates from KEDA's CRDs. Prints one line per problem; exits 1 when any object is invalid.
import { readFileSync } from "node:fs";

const objects = JSON.parse(readFileSync(0, "utf8"));
let failed = false;
for (const obj of objects) {
  const [group, version] = obj.apiVersion.split("/");
  const module = await import(`@kubernetes-models/keda/${group}/${version}/${obj.kind}`);
  const Model = module[obj.kind];
  try {
    new Model(obj).validate();
  } catch (err) {
    failed = true;
    console.log(`${obj.kind}/${obj.metadata?.name}: ${err.message}`);
  }
}
process.exit(failed ? 1 : 0);
