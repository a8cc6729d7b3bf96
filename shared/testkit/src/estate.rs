//! Resources tests and the demo create in the emulator.

/// Creates an Auto Scaling group (with a launch configuration of the same name).
pub async fn create_group(
    client: &aws_sdk_autoscaling::Client,
    name: &str,
    min: i32,
    max: i32,
    desired: i32,
) {
    client
        .create_launch_configuration()
        .launch_configuration_name(name)
        .image_id("ami-12c6146b")
        .instance_type("t3.micro")
        .send()
        .await
        .unwrap_or_else(|e| panic!("create launch configuration {name}: {e:?}"));
    client
        .create_auto_scaling_group()
        .auto_scaling_group_name(name)
        .launch_configuration_name(name)
        .min_size(min)
        .max_size(max)
        .desired_capacity(desired)
        .availability_zones("us-east-1a")
        .send()
        .await
        .unwrap_or_else(|e| panic!("create group {name}: {e:?}"));
}

/// A group's desired capacity, as the emulator holds it.
pub async fn desired_capacity(client: &aws_sdk_autoscaling::Client, name: &str) -> i32 {
    let out = client
        .describe_auto_scaling_groups()
        .auto_scaling_group_names(name)
        .send()
        .await
        .unwrap_or_else(|e| panic!("describe group {name}: {e:?}"));
    out.auto_scaling_groups()
        .first()
        .and_then(|g| g.desired_capacity())
        .unwrap_or_else(|| panic!("group {name} not found"))
}
