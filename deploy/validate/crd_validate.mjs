// Validates the custom resources of a rendered overlay against the schemas
// published in @kubernetes-models (generated from KEDA's and the Prometheus
// Operator's CRDs). Reads a JSON array of manifests on stdin; prints one line
// per resource; exits 1 if any is invalid. Kinds without a published schema
// here (RabbitmqCluster) are reported as skipped.
import { readFileSync } from "node:fs";
import * as keda from "@kubernetes-models/keda/keda.sh/v1alpha1";
import * as monitoring from "@kubernetes-models/prometheus-operator/monitoring.coreos.com/v1";

const models = {
  "keda.sh/v1alpha1": keda,
  "monitoring.coreos.com/v1": monitoring,
};
const crdKinds = new Set([
  "ScaledObject", "TriggerAuthentication", "RabbitmqCluster",
  "ServiceMonitor", "PrometheusRule",
]);

const manifests = JSON.parse(readFileSync(0, "utf8"));
let failed = 0;
for (const manifest of manifests) {
  if (!crdKinds.has(manifest.kind)) continue;
  const id = `${manifest.kind}/${manifest.metadata?.name}`;
  const Model = models[manifest.apiVersion]?.[manifest.kind];
  if (!Model) {
    console.log(`skip [crd] ${id}: no schema for ${manifest.apiVersion} available`);
    continue;
  }
  try {
    new Model(manifest).validate();
    console.log(`ok   [crd] ${id}`);
  } catch (error) {
    failed += 1;
    console.log(`FAIL [crd] ${id}: ${error.message}`);
  }
}
process.exit(failed ? 1 : 0);
