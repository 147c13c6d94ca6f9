//! cloud-emulator: a local server speaking the CloudBase web protocol.
pub mod functions;
