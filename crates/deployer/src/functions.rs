//! The functions' stack without `sls deploy`, for the offline rehearsal against an emulator that
//! `sls deploy` cannot be pointed at: the templates `sls package` wrote, deployed the way
//! Serverless does it — first the stack with the deployment bucket, then the artifacts uploaded to
//! the keys the full template names, then the full template.

use std::path::Path;

use anyhow::Context;
use aws_sdk_s3::primitives::ByteStream;
use serde_json::Value;

use crate::stack::{self, StackSpec};

/// CloudFormation takes at most this much template inline; larger ones go through S3.
const INLINE_TEMPLATE_LIMIT: usize = 51_200;

pub async fn deploy(
    cf: &aws_sdk_cloudformation::Client,
    s3: &aws_sdk_s3::Client,
    stack_name: &str,
    packaged: &Path,
    artifacts: &Path,
) -> anyhow::Result<()> {
    // The bucket-only template is for a stack's first deployment: applied to an existing stack it
    // would delete every function.
    if stack::status(cf, stack_name).await?.is_none() {
        let create =
            std::fs::read_to_string(packaged.join("cloudformation-template-create-stack.json"))
                .context("no packaged create template: run `serverless package` first")?;
        stack::deploy(
            cf,
            StackSpec {
                name: stack_name,
                body: Some(create),
                template_url: None,
                parameters: vec![],
            },
        )
        .await?;
    }
    let bucket = stack::outputs(cf, stack_name)
        .await?
        .remove("ServerlessDeploymentBucketName")
        .context("the functions' stack has no ServerlessDeploymentBucketName output")?;

    let update_text =
        std::fs::read_to_string(packaged.join("cloudformation-template-update-stack.json"))?;
    let update: Value = serde_json::from_str(&update_text)?;
    let resources = update["Resources"]
        .as_object()
        .context("the update template has no Resources")?;
    for (name, resource) in resources {
        if resource["Type"] != "AWS::Lambda::Function" {
            continue;
        }
        let key = resource["Properties"]["Code"]["S3Key"]
            .as_str()
            .with_context(|| format!("{name} has no S3Key"))?;
        let file = Path::new(key)
            .file_name()
            .context("S3Key without a file name")?;
        let artifact = artifacts.join(file);
        let body = ByteStream::from_path(&artifact)
            .await
            .with_context(|| format!("reading {}", artifact.display()))?;
        s3.put_object()
            .bucket(&bucket)
            .key(key)
            .body(body)
            .send()
            .await?;
        println!("uploaded {name} code to s3://{bucket}/{key}");
    }
    let (body, template_url) = if update_text.len() <= INLINE_TEMPLATE_LIMIT {
        (Some(update_text), None)
    } else {
        let key = "serverless/compiled-cloudformation-template.json";
        s3.put_object()
            .bucket(&bucket)
            .key(key)
            .body(ByteStream::from(update_text.into_bytes()))
            .send()
            .await?;
        (
            None,
            Some(format!("https://{bucket}.s3.amazonaws.com/{key}")),
        )
    };
    stack::deploy(
        cf,
        StackSpec {
            name: stack_name,
            body,
            template_url,
            parameters: vec![],
        },
    )
    .await
}

/// Empties the deployment bucket and deletes the functions' stack.
pub async fn remove(
    cf: &aws_sdk_cloudformation::Client,
    s3: &aws_sdk_s3::Client,
    stack_name: &str,
) -> anyhow::Result<()> {
    if stack::status(cf, stack_name).await?.is_some() {
        if let Some(bucket) = stack::outputs(cf, stack_name)
            .await?
            .remove("ServerlessDeploymentBucketName")
        {
            let n = crate::configure::empty_bucket(s3, &bucket).await?;
            println!("emptied s3://{bucket} ({n} objects)");
        }
    }
    for kept in stack::delete_from_any_state(cf, stack_name).await? {
        println!("left behind: {kept}");
    }
    Ok(())
}
