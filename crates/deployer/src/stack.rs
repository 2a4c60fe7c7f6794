//! CloudFormation stacks: create or update, delete, and wait while printing the stack's events as
//! they happen, so a deploy shows its progress instead of sitting silent for twenty minutes.

use std::collections::{HashMap, HashSet};
use std::time::Duration;

use anyhow::{bail, Context};
use aws_sdk_cloudformation::error::DisplayErrorContext;
use aws_sdk_cloudformation::types::{Capability, Parameter, StackStatus};
use aws_sdk_cloudformation::Client;

/// What to deploy: a template and its parameters.
pub struct StackSpec<'a> {
    pub name: &'a str,
    /// Template body; large templates go through `template_url` instead.
    pub body: Option<String>,
    pub template_url: Option<String>,
    pub parameters: Vec<(String, String)>,
}

/// How often the stack is polled: slower against AWS (rate limits), fast against an emulator.
fn poll_interval() -> Duration {
    if std::env::var_os("AWS_ENDPOINT_URL").is_some() {
        Duration::from_millis(500)
    } else {
        Duration::from_secs(5)
    }
}

/// The stack's current status, or `None` when there is no such stack.
pub async fn status(cf: &Client, name: &str) -> anyhow::Result<Option<StackStatus>> {
    match cf.describe_stacks().stack_name(name).send().await {
        Ok(out) => Ok(out.stacks().first().and_then(|s| s.stack_status().cloned())),
        Err(e)
            if e.as_service_error()
                .and_then(|s| s.meta().message())
                .is_some_and(|m| m.contains("does not exist")) =>
        {
            Ok(None)
        }
        Err(e) => Err(e).with_context(|| format!("describing stack {name}")),
    }
}

/// Creates the stack, or updates it when it exists; waits until it settles. Deploying twice is an
/// update, and an update with nothing to change is a success.
pub async fn deploy(cf: &Client, spec: StackSpec<'_>) -> anyhow::Result<()> {
    let params: Vec<Parameter> = spec
        .parameters
        .iter()
        .map(|(k, v)| {
            Parameter::builder()
                .parameter_key(k)
                .parameter_value(v)
                .build()
        })
        .collect();
    let caps = [
        Capability::CapabilityIam,
        Capability::CapabilityNamedIam,
        Capability::CapabilityAutoExpand,
    ];
    let existing = status(cf, spec.name).await?;
    let failed_creation = matches!(
        existing,
        Some(StackStatus::RollbackComplete | StackStatus::RollbackFailed)
    );
    if failed_creation {
        // A stack whose creation failed can only be deleted; start over.
        println!(
            "stack {} failed to create earlier: deleting it first",
            spec.name
        );
        for kept in delete_from_any_state(cf, spec.name).await? {
            println!("left behind: {kept}");
        }
    }
    let seen = event_ids(cf, spec.name).await.unwrap_or_default();
    match existing.filter(|_| !failed_creation) {
        None => {
            println!("creating stack {}", spec.name);
            cf.create_stack()
                .stack_name(spec.name)
                .set_template_body(spec.body)
                .set_template_url(spec.template_url)
                .set_parameters(Some(params))
                .set_capabilities(Some(caps.to_vec()))
                .send()
                .await
                .map_err(|e| {
                    anyhow::anyhow!("creating stack {}: {}", spec.name, DisplayErrorContext(e))
                })?;
        }
        Some(_) => {
            println!("updating stack {}", spec.name);
            // Parameters not given keep their current values: a plain redeploy must not reset
            // what an earlier one set (instance class, NAT, Multi-AZ).
            let given: Vec<String> = spec.parameters.iter().map(|(k, _)| k.clone()).collect();
            let mut params = params.clone();
            for key in parameters(cf, spec.name).await?.into_keys() {
                if !given.contains(&key) {
                    params.push(
                        Parameter::builder()
                            .parameter_key(key)
                            .use_previous_value(true)
                            .build(),
                    );
                }
            }
            let updated = cf
                .update_stack()
                .stack_name(spec.name)
                .set_template_body(spec.body)
                .set_template_url(spec.template_url)
                .set_parameters(Some(params))
                .set_capabilities(Some(caps.to_vec()))
                .send()
                .await;
            if let Err(e) = updated {
                let message = e
                    .as_service_error()
                    .and_then(|s| s.meta().message())
                    .unwrap_or_default()
                    .to_owned();
                if message.contains("No updates are to be performed") {
                    println!("stack {} is up to date", spec.name);
                    return Ok(());
                }
                bail!("updating stack {}: {}", spec.name, DisplayErrorContext(e));
            }
        }
    }
    wait(cf, spec.name, seen).await
}

/// A resource of a stack, as CloudFormation reports it.
pub struct Resource {
    pub logical_id: String,
    pub physical_id: Option<String>,
    pub kind: String,
    pub status: String,
    pub reason: Option<String>,
}

/// The stack's resources (by name or id); empty when there is no such stack.
pub async fn resources(cf: &Client, name: &str) -> anyhow::Result<Vec<Resource>> {
    let out = match cf.describe_stack_resources().stack_name(name).send().await {
        Ok(out) => out,
        Err(e)
            if e.as_service_error()
                .and_then(|s| s.meta().message())
                .is_some_and(|m| m.contains("does not exist")) =>
        {
            return Ok(Vec::new())
        }
        Err(e) => return Err(e).with_context(|| format!("listing resources of {name}")),
    };
    Ok(out
        .stack_resources()
        .iter()
        .map(|r| Resource {
            logical_id: r.logical_resource_id().unwrap_or_default().to_owned(),
            physical_id: r.physical_resource_id().map(str::to_owned),
            kind: r.resource_type().unwrap_or_default().to_owned(),
            status: r
                .resource_status()
                .map(|s| s.as_str().to_owned())
                .unwrap_or_default(),
            reason: r.resource_status_reason().map(str::to_owned),
        })
        .collect())
}

/// Deletes the stack from whatever state it is in, and says what, if anything, is left: a
/// stack stuck in `DELETE_FAILED` (a resource that would not go) is deleted again, then, if it
/// still fails, deleted keeping those resources, which are listed with how to delete them by
/// hand. An `UPDATE_ROLLBACK_FAILED` stack is first rolled back, since it cannot be deleted.
pub async fn delete_from_any_state(cf: &Client, name: &str) -> anyhow::Result<Vec<String>> {
    if status(cf, name).await? == Some(StackStatus::UpdateRollbackFailed) {
        println!("stack {name} is in UPDATE_ROLLBACK_FAILED: continuing its rollback first");
        let seen = event_ids(cf, name).await.unwrap_or_default();
        cf.continue_update_rollback()
            .stack_name(name)
            .send()
            .await
            .map_err(|e| {
                anyhow::anyhow!(
                    "continuing the rollback of {name}: {}",
                    DisplayErrorContext(e)
                )
            })?;
        // Settles in UPDATE_ROLLBACK_COMPLETE (a success here) or fails again: delete anyway.
        let _ = wait(cf, name, seen).await;
    }
    let id = stack_id(cf, name).await?;
    for attempt in 1..=2 {
        match delete(cf, name).await {
            Ok(()) => return Ok(Vec::new()),
            Err(e) => println!("deleting {name} (attempt {attempt}) failed: {e:#}"),
        }
    }
    let stuck: Vec<Resource> = resources(cf, &id)
        .await?
        .into_iter()
        .filter(|r| r.status == "DELETE_FAILED")
        .collect();
    if stuck.is_empty() {
        bail!("stack {name} could not be deleted, and no resource says why");
    }
    println!(
        "deleting {name} once more, keeping what would not go: {}",
        stuck
            .iter()
            .map(|r| r.logical_id.as_str())
            .collect::<Vec<_>>()
            .join(", ")
    );
    let seen = event_ids(cf, &id).await.unwrap_or_default();
    cf.delete_stack()
        .stack_name(&id)
        .set_retain_resources(Some(stuck.iter().map(|r| r.logical_id.clone()).collect()))
        .send()
        .await
        .map_err(|e| anyhow::anyhow!("deleting {name}: {}", DisplayErrorContext(e)))?;
    wait(cf, &id, seen).await?;
    Ok(stuck
        .iter()
        .map(|r| {
            format!(
                "{} {} ({}): {} — {}",
                r.kind,
                r.physical_id.as_deref().unwrap_or("?"),
                r.logical_id,
                r.reason.as_deref().unwrap_or("would not delete"),
                how_to_delete(&r.kind, r.physical_id.as_deref().unwrap_or("?"))
            )
        })
        .collect())
}

/// The command that deletes a kept resource by hand, for the kinds a stage has.
pub fn how_to_delete(kind: &str, id: &str) -> String {
    match kind {
        "AWS::RDS::DBInstance" => format!(
            "aws rds modify-db-instance --db-instance-identifier {id} --no-deletion-protection \
             --apply-immediately && aws rds delete-db-instance --db-instance-identifier {id} \
             --final-db-snapshot-identifier {id}-final"
        ),
        "AWS::S3::Bucket" => format!("aws s3 rb s3://{id} --force"),
        "AWS::EC2::VPCEndpoint" => format!("aws ec2 delete-vpc-endpoints --vpc-endpoint-ids {id}"),
        "AWS::EC2::NatGateway" => format!("aws ec2 delete-nat-gateway --nat-gateway-id {id}"),
        "AWS::KMS::Key" => format!("aws kms schedule-key-deletion --key-id {id}"),
        "AWS::SQS::Queue" => format!("aws sqs delete-queue --queue-url {id}"),
        _ => format!("delete {id} in the console or with the AWS CLI"),
    }
}

async fn stack_id(cf: &Client, name: &str) -> anyhow::Result<String> {
    Ok(cf
        .describe_stacks()
        .stack_name(name)
        .send()
        .await
        .ok()
        .and_then(|out| {
            out.stacks()
                .first()
                .and_then(|s| s.stack_id().map(str::to_owned))
        })
        .unwrap_or_else(|| name.to_owned()))
}

/// Deletes the stack (if any) and waits until it is gone.
pub async fn delete(cf: &Client, name: &str) -> anyhow::Result<()> {
    let Some(_) = status(cf, name).await? else {
        println!("stack {name} does not exist: nothing to delete");
        return Ok(());
    };
    let id = stack_id(cf, name).await?;
    let seen = event_ids(cf, name).await.unwrap_or_default();
    println!("deleting stack {name}");
    if let Err(e) = cf.delete_stack().stack_name(name).send().await {
        // What counts is that the stack is gone: an error from a deletion that still happened
        // (moto reports resources it cannot delete this way) is worth a warning, not a failure.
        if status(cf, name).await?.is_some() {
            bail!("deleting stack {name}: {}", DisplayErrorContext(e));
        }
        let message = e
            .as_service_error()
            .and_then(|s| s.meta().message())
            .unwrap_or_default();
        println!("warning: stack {name} is gone, but its deletion reported: {message}");
        return Ok(());
    }
    // By id: a deleted stack is no longer found by name.
    wait(cf, &id, seen).await
}

/// The stack's outputs by key.
pub async fn outputs(cf: &Client, name: &str) -> anyhow::Result<HashMap<String, String>> {
    let out = cf
        .describe_stacks()
        .stack_name(name)
        .send()
        .await
        .with_context(|| format!("reading outputs of {name}"))?;
    let stack = out
        .stacks()
        .first()
        .with_context(|| format!("no stack {name}"))?;
    Ok(stack
        .outputs()
        .iter()
        .filter_map(|o| Some((o.output_key()?.to_owned(), o.output_value()?.to_owned())))
        .collect())
}

/// The stack's parameters by key.
pub async fn parameters(cf: &Client, name: &str) -> anyhow::Result<HashMap<String, String>> {
    let out = cf.describe_stacks().stack_name(name).send().await?;
    let stack = out
        .stacks()
        .first()
        .with_context(|| format!("no stack {name}"))?;
    Ok(stack
        .parameters()
        .iter()
        .filter_map(|p| {
            Some((
                p.parameter_key()?.to_owned(),
                p.parameter_value()?.to_owned(),
            ))
        })
        .collect())
}

/// Changes one parameter of a stack, keeping its template and every other parameter.
pub async fn set_parameter(cf: &Client, name: &str, key: &str, value: &str) -> anyhow::Result<()> {
    let current = parameters(cf, name).await?;
    if current.get(key).map(String::as_str) == Some(value) {
        return Ok(());
    }
    let params = current
        .keys()
        .map(|k| {
            let p = Parameter::builder().parameter_key(k);
            if k == key {
                p.parameter_value(value).build()
            } else {
                p.use_previous_value(true).build()
            }
        })
        .collect();
    let seen = event_ids(cf, name).await.unwrap_or_default();
    println!("stack {name}: setting {key}={value}");
    cf.update_stack()
        .stack_name(name)
        .use_previous_template(true)
        .set_parameters(Some(params))
        .capabilities(Capability::CapabilityIam)
        .capabilities(Capability::CapabilityNamedIam)
        .send()
        .await
        .map_err(|e| anyhow::anyhow!("updating {key} of {name}: {}", DisplayErrorContext(e)))?;
    wait(cf, name, seen).await
}

async fn event_ids(cf: &Client, name: &str) -> anyhow::Result<HashSet<String>> {
    let out = cf.describe_stack_events().stack_name(name).send().await?;
    Ok(out
        .stack_events()
        .iter()
        .filter_map(|e| e.event_id().map(str::to_owned))
        .collect())
}

fn settled(status: &StackStatus) -> Option<bool> {
    use StackStatus as S;
    match status {
        S::CreateComplete | S::UpdateComplete | S::DeleteComplete | S::ImportComplete => Some(true),
        S::CreateFailed
        | S::DeleteFailed
        | S::RollbackComplete
        | S::RollbackFailed
        | S::UpdateFailed
        | S::UpdateRollbackComplete
        | S::UpdateRollbackFailed
        | S::ImportRollbackComplete
        | S::ImportRollbackFailed => Some(false),
        _ => None,
    }
}

/// Prints new stack events, oldest first, until the stack settles; fails if it settled badly.
async fn wait(cf: &Client, name: &str, mut seen: HashSet<String>) -> anyhow::Result<()> {
    loop {
        if let Ok(out) = cf.describe_stack_events().stack_name(name).send().await {
            let mut fresh: Vec<_> = out
                .stack_events()
                .iter()
                .filter(|e| e.event_id().is_some_and(|id| !seen.contains(id)))
                .collect();
            fresh.reverse();
            for e in fresh {
                seen.insert(e.event_id().unwrap_or_default().to_owned());
                println!(
                    "  {}  {:<40} {:<28} {}",
                    e.timestamp().map(|t| t.to_string()).unwrap_or_default(),
                    e.logical_resource_id().unwrap_or_default(),
                    e.resource_status().map(|s| s.as_str()).unwrap_or_default(),
                    e.resource_status_reason().unwrap_or_default()
                );
            }
        }
        match status(cf, name).await? {
            None => return Ok(()),
            Some(s) => match settled(&s) {
                Some(true) => {
                    println!("stack {name}: {}", s.as_str());
                    return Ok(());
                }
                Some(false) => bail!("stack {name} ended in {}", s.as_str()),
                None => tokio::time::sleep(poll_interval()).await,
            },
        }
    }
}
