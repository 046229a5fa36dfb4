#![forbid(unsafe_code)]
//! The `git-controller` binary: parses flags and calls the library.

use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(
    name = "git-controller",
    version,
    about = "Two-way sync between Kubernetes and Git"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Print the CustomResourceDefinitions as multi-document YAML.
    Crds,
    /// Run the controller against the cluster in KUBECONFIG (or in-cluster config).
    Run,
}

#[tokio::main]
async fn main() -> std::process::ExitCode {
    match Cli::parse().command {
        Command::Crds => {
            print!("{}", git_controller::api::crds_yaml());
            std::process::ExitCode::SUCCESS
        }
        Command::Run => {
            let client = match kube::Client::try_default().await {
                Ok(client) => client,
                Err(e) => {
                    eprintln!("error: cannot connect to the cluster: {e}");
                    return std::process::ExitCode::FAILURE;
                }
            };
            match client.apiserver_version().await {
                Ok(v) => {
                    println!("connected to Kubernetes {}.{}", v.major, v.minor);
                    std::process::ExitCode::SUCCESS
                }
                Err(e) => {
                    eprintln!("error: the API server does not answer: {e}");
                    std::process::ExitCode::FAILURE
                }
            }
        }
    }
}
