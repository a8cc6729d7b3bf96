//! The parts of an RDS ARN the promoter reads (pure: the planner and the API both use them).

/// The last path part of an ARN (`arn:aws:rds:us-east-1:1:cluster:orders` → `orders`), or the
/// string itself.
pub fn arn_name(arn: &str) -> &str {
    arn.rsplit(':').next().unwrap_or(arn)
}

/// The Region of an ARN.
pub fn arn_region(arn: &str) -> Option<&str> {
    arn.split(':').nth(3).filter(|r| !r.is_empty())
}
