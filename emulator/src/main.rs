//! `cloud-emulator`: see [`cloud_emulator::cli`].

fn main() {
    std::process::exit(cloud_emulator::cli::main());
}
