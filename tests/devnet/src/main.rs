//! The `devnet` command: `serve` runs the node; `up`, `down`, `status` and the
//! control commands are what `scripts/devnet` calls.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use devnet::error::Error;
use devnet::http::RpcServer;
use devnet::node::Node;
use devnet::stack::{self, StateDir};
use serde_json::{Value, json};

const USAGE: &str = "usage: devnet COMMAND --dir DIR [ARGS]
  serve                         run the node (writes DIR/devnet.url)
  up --venv VENV [--realistic] [--unlimited]
                                start devnet + ElectrumX in the background
                                (--unlimited: ElectrumX without session cost limits)
  pay ADDRESS SATS | mine N | reorg DEPTH [--drop TXID]... | replace TXID [ADDRESS]
  fee SAT_PER_VB | status | down";

struct Args {
    command: String,
    dir: PathBuf,
    venv: Option<PathBuf>,
    realistic: bool,
    unlimited: bool,
    drop: Vec<String>,
    rest: Vec<String>,
}

fn parse_args() -> Result<Args, Error> {
    let mut it = std::env::args().skip(1);
    let command = it.next().ok_or_else(|| Error::Usage(USAGE.into()))?;
    let mut args = Args {
        command,
        dir: PathBuf::from(std::env::var("DEVNET_DIR").unwrap_or_else(|_| "target/devnet".into())),
        venv: None,
        realistic: false,
        unlimited: false,
        drop: Vec::new(),
        rest: Vec::new(),
    };
    while let Some(a) = it.next() {
        let mut value = |flag: &str| {
            it.next()
                .ok_or_else(|| Error::Usage(format!("{flag} needs a value")))
        };
        match a.as_str() {
            "--dir" => args.dir = PathBuf::from(value("--dir")?),
            "--venv" => args.venv = Some(PathBuf::from(value("--venv")?)),
            "--drop" => args.drop.push(value("--drop")?),
            "--realistic" => args.realistic = true,
            "--unlimited" => args.unlimited = true,
            flag if flag.starts_with("--") => {
                return Err(Error::Usage(format!("unknown option {flag}\n{USAGE}")));
            }
            _ => args.rest.push(a),
        }
    }
    Ok(args)
}

fn positional<'a>(args: &'a Args, n: usize, name: &str) -> Result<&'a str, Error> {
    args.rest.get(n).map(String::as_str).ok_or_else(|| {
        Error::Usage(format!(
            "{} needs {name} (see `scripts/devnet help`)",
            args.command
        ))
    })
}

fn number(args: &Args, n: usize, name: &str) -> Result<u64, Error> {
    let s = positional(args, n, name)?;
    s.parse()
        .map_err(|_| Error::Usage(format!("{name} must be a non-negative integer, not {s:?}")))
}

fn run() -> Result<(), Error> {
    let args = parse_args()?;
    let dir = StateDir(args.dir.clone());
    let ctl = |method: &str, params: Value| -> Result<Value, Error> {
        dir.client()?.call(method, params)
    };
    let print = |v: Value| match v {
        Value::String(s) => println!("{s}"),
        other => println!("{other}"),
    };
    match args.command.as_str() {
        "serve" => {
            std::fs::create_dir_all(&args.dir).map_err(Error::io("create state dir"))?;
            let server = RpcServer::start(Node::new(), SocketAddr::from(([127, 0, 0, 1], 0)))?;
            stack::report_rpc_url(&dir, &server.url())?;
            eprintln!("devnet: JSON-RPC on {}", server.addr());
            server.wait();
        }
        "up" => {
            let venv = args
                .venv
                .clone()
                .ok_or_else(|| Error::Usage("up needs --venv VENV".into()))?;
            print!(
                "{}",
                stack::up(&dir, &venv, args.realistic, args.unlimited)?
            );
        }
        "down" => {
            for p in stack::down(&dir)? {
                println!("stopped {p}");
            }
        }
        "status" => print!("{}", stack::status(&dir)?),
        "pay" => {
            let address = positional(&args, 0, "ADDRESS")?;
            print(ctl(
                "devnet_pay",
                json!([address, number(&args, 1, "SATS")?]),
            )?);
        }
        "mine" => print(ctl("devnet_mine", json!([number(&args, 0, "N")?]))?),
        "reorg" => print(ctl(
            "devnet_reorg",
            json!([number(&args, 0, "DEPTH")?, args.drop]),
        )?),
        "replace" => {
            let txid = positional(&args, 0, "TXID")?;
            print(ctl("devnet_replace", json!([txid, args.rest.get(1)]))?);
        }
        "fee" => {
            ctl("devnet_fee", json!([number(&args, 0, "SAT_PER_VB")?]))?;
        }
        other => return Err(Error::Usage(format!("unknown command {other}\n{USAGE}"))),
    }
    Ok(())
}

fn main() -> ExitCode {
    match run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("devnet: {e}");
            ExitCode::FAILURE
        }
    }
}
