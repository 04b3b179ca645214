//! `topology apply` declares the fleet's exchange, queues and bindings;
//! `topology check` compares what the broker holds with what is expected,
//! through the management API, naming every difference.

use ingest_shared::headers::table_to_json;
use ingest_shared::topology::QueueSpec;
use serde_json::{Map, Value, json};

use crate::Context;
use crate::cli::CheckArgs;
use crate::error::{CtlError, Exit, broker};
use crate::management::{ManagementClient, QueueInfo};

/// The only queue type the fleet uses.
const EXPECTED_QUEUE_TYPE: &str = "quorum";

/// Runs `topology apply`.
pub async fn apply(context: &Context) -> Result<Exit, CtlError> {
    let connection = context.connect().await?;
    let channel = connection
        .create_channel()
        .await
        .map_err(broker("opening a channel"))?;
    context.topology.declare(&channel).await?;
    // The declarations are done; a failing close changes nothing.
    let _ = connection.close(200, "done".into()).await;
    println!(
        "declared exchange {} and {} queues with their bindings",
        context.topology.exchange(),
        context.topology.queues().len()
    );
    Ok(Exit::Ok)
}

/// Runs `topology check`; exit 3 when anything differs.
pub async fn check(context: &Context, args: CheckArgs) -> Result<Exit, CtlError> {
    let client = ManagementClient::new(context.management.clone())?;
    let exchange = context.topology.exchange();
    let mut differences = exchange_differences(&exchange, client.exchange(&exchange).await?);
    for spec in context.topology.queues() {
        let info = client.queue(&spec.name).await?;
        differences.extend(queue_differences(&spec, info.as_ref()));
        if info.is_some() {
            let bindings = client.bindings(&exchange, &spec.name).await?;
            let bound = bindings
                .iter()
                .any(|b| b.get("routing_key").and_then(Value::as_str) == Some(&spec.routing_key));
            if !bound {
                differences.push(format!(
                    "queue {} is not bound to exchange {exchange} with routing key {:?}",
                    spec.name, spec.routing_key
                ));
            }
        }
    }

    if args.json {
        println!(
            "{}",
            json!({ "matches": differences.is_empty(), "differences": differences })
        );
    } else if differences.is_empty() {
        println!(
            "topology matches: exchange {exchange} and {} queues",
            context.topology.queues().len()
        );
    } else {
        for difference in &differences {
            println!("{difference}");
        }
    }
    if differences.is_empty() {
        Ok(Exit::Ok)
    } else {
        eprintln!(
            "{} differences from the expected topology",
            differences.len()
        );
        Ok(Exit::Unhealthy)
    }
}

fn exchange_differences(name: &str, found: Option<Value>) -> Vec<String> {
    let Some(found) = found else {
        return vec![format!("exchange {name} does not exist")];
    };
    let mut differences = Vec::new();
    let kind = found.get("type").and_then(Value::as_str).unwrap_or("?");
    if kind != "direct" {
        differences.push(format!(
            "exchange {name} is of type {kind}, expected direct"
        ));
    }
    if found.get("durable").and_then(Value::as_bool) != Some(true) {
        differences.push(format!("exchange {name} is not durable"));
    }
    differences
}

/// Every way `found` differs from `spec`: existence, type, durability, and
/// each `x-` argument missing, different or unexpected.
pub fn queue_differences(spec: &QueueSpec, found: Option<&QueueInfo>) -> Vec<String> {
    let name = &spec.name;
    let Some(found) = found else {
        return vec![format!("queue {name} does not exist")];
    };
    let mut differences = Vec::new();
    if found.kind != EXPECTED_QUEUE_TYPE {
        differences.push(format!(
            "queue {name} is of type {}, expected {EXPECTED_QUEUE_TYPE}",
            found.kind
        ));
    }
    if !found.durable {
        differences.push(format!("queue {name} is not durable"));
    }
    let expected = match table_to_json(&spec.arguments) {
        Value::Object(map) => map,
        _ => Map::new(),
    };
    for (key, want) in &expected {
        match found.arguments.get(key) {
            None => differences.push(format!("queue {name} lacks argument {key}={want}")),
            Some(have) if !same_value(want, have) => {
                differences.push(format!(
                    "queue {name} has argument {key}={have}, expected {want}"
                ));
            }
            Some(_) => {}
        }
    }
    for (key, have) in &found.arguments {
        if !expected.contains_key(key) {
            differences.push(format!("queue {name} has unexpected argument {key}={have}"));
        }
    }
    differences
}

/// Numbers compare by value whatever their JSON width; the rest exactly.
fn same_value(want: &Value, have: &Value) -> bool {
    match (want.as_f64(), have.as_f64()) {
        (Some(a), Some(b)) => a == b,
        _ => want == have,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ingest_shared::Topology;

    fn found(arguments: Value) -> QueueInfo {
        serde_json::from_value(json!({
            "name": "x", "type": "quorum", "durable": true, "arguments": arguments,
        }))
        .unwrap()
    }

    #[test]
    fn every_argument_difference_is_named() {
        let topology = Topology::new("t-", &[std::time::Duration::from_secs(5)]);
        let delay = &topology.queues()[2];
        let exact = found(json!({
            "x-queue-type": "quorum", "x-message-ttl": 5000,
            "x-dead-letter-exchange": "t-ingest", "x-dead-letter-routing-key": "jobs",
            "x-dead-letter-strategy": "at-least-once", "x-overflow": "reject-publish",
        }));
        assert_eq!(queue_differences(delay, Some(&exact)), Vec::<String>::new());

        let other = found(json!({
            "x-queue-type": "quorum", "x-message-ttl": 6000,
            "x-dead-letter-exchange": "t-ingest", "x-dead-letter-routing-key": "jobs",
            "x-overflow": "reject-publish", "x-max-length": 10,
        }));
        let differences = queue_differences(delay, Some(&other));
        assert_eq!(differences.len(), 3, "{differences:?}");
        assert!(
            differences
                .iter()
                .any(|d| d.contains("x-message-ttl=6000, expected 5000"))
        );
        assert!(
            differences
                .iter()
                .any(|d| d.contains("lacks argument x-dead-letter-strategy"))
        );
        assert!(
            differences
                .iter()
                .any(|d| d.contains("unexpected argument x-max-length"))
        );
        assert_eq!(
            queue_differences(delay, None),
            ["queue t-ingest.delay.5s does not exist"]
        );
    }
}
