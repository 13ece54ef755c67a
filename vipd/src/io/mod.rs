//! Everything that touches the kernel. The protocol core never calls in here; the daemon
//! performs the core's actions through these modules and feeds results back as inputs.
pub mod bpf;
