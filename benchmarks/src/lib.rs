//! The side-by-side benchmark: each function's real binary and a small Python/boto3 peer of the
//! same job (`benchmarks/python/`), under the same Lambda Runtime API emulator and the same moto
//! server, given the same events, in alternating runs with moto reset between runs. It first
//! checks that both sides make exactly the same AWS calls (through a recording proxy), then
//! prints the figures. Timing lives here, never in a test: the test only checks that it runs and
//! that the calls are the same.

pub mod measure;
pub mod report;
pub mod sizes;
pub mod subjects;

pub use measure::{Calls, Run, Side};
pub use subjects::Subject;
