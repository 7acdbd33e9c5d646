//! Driving the S3 endpoint with real S3 clients from PyPI (boto3, awscli, s3cmd), installed by
//! `scripts/test.sh` in the virtualenv py3fdfs lives in: the storage.conf lines that turn the
//! endpoint on, the credentials file, and the clients run against one storage's endpoint.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// The S3 port every test storage listens on (each has a loopback address of its own).
pub const S3_PORT: u16 = 29000;

/// An access key that may do anything, and one that may only read the group's bucket.
pub const ADMIN: (&str, &str) = ("rfdfs-admin", "admin-secret-0123456789");
pub const READER: (&str, &str) = ("rfdfs-reader", "reader-secret-0123456789");

/// Write the credentials file under `dir`; the storage.conf lines that use it.
pub fn storage_lines(dir: &Path) -> String {
    let file = dir.join("s3.keys");
    std::fs::write(
        &file,
        format!(
            "# test keys\n{} {}\n{} {} group1:ro\n",
            ADMIN.0, ADMIN.1, READER.0, READER.1
        ),
    )
    .unwrap();
    format!(
        "s3.server_port = {S3_PORT}\ns3.credentials_file = {}\n",
        file.display()
    )
}

/// The endpoint URL of the storage at `ip`.
pub fn endpoint(ip: &str) -> String {
    format!("http://{ip}:{S3_PORT}")
}

fn venv_bin(name: &str) -> PathBuf {
    crate::py3fdfs::python().with_file_name(name)
}

/// Run a Python script of `tests/s3/` with `args`; its output, failing the test when it fails.
pub fn run_script(script: &str, args: &[&str]) -> String {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("s3")
        .join(script);
    let out = Command::new(crate::py3fdfs::python())
        .arg(path)
        .args(args)
        .output()
        .expect("run python");
    checked(&format!("{script} {args:?}"), out)
}

fn checked(what: &str, out: Output) -> String {
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "{what} failed ({}):\n{stdout}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
}

/// `aws <args>` (awscli) against `endpoint` with the admin key; its output.
pub fn aws(endpoint: &str, args: &[&str]) -> String {
    let out = aws_command(endpoint, args).output().expect("run aws");
    checked(&format!("aws {args:?}"), out)
}

/// The `aws` command, for a caller that checks the outcome itself.
pub fn aws_command(endpoint: &str, args: &[&str]) -> Command {
    let mut c = Command::new(venv_bin("aws"));
    c.args(["--endpoint-url", endpoint, "--region", "us-east-1"])
        .args(args)
        .env("AWS_ACCESS_KEY_ID", ADMIN.0)
        .env("AWS_SECRET_ACCESS_KEY", ADMIN.1)
        .env("AWS_CONFIG_FILE", "/dev/null")
        .env_remove("AWS_CA_BUNDLE")
        .env("AWS_SHARED_CREDENTIALS_FILE", "/dev/null")
        .env_remove("AWS_PROFILE");
    c
}

/// `s3cmd <args>` against the storage at `ip`, path-style, with the admin key; its output.
pub fn s3cmd(ip: &str, args: &[&str]) -> String {
    let host = format!("{ip}:{S3_PORT}");
    let out = Command::new(crate::py3fdfs::python())
        .arg(venv_bin("s3cmd"))
        .args([
            "--config=/dev/null",
            "--no-ssl",
            &format!("--host={host}"),
            &format!("--host-bucket={host}"),
            &format!("--access_key={}", ADMIN.0),
            &format!("--secret_key={}", ADMIN.1),
            "--region=us-east-1",
            "--no-check-md5",
        ])
        .args(args)
        .output()
        .expect("run s3cmd");
    checked(&format!("s3cmd {args:?}"), out)
}

/// `rclone <args>` with the remote `rf:` set to the storage at `ip` (admin key); its output.
pub fn rclone(ip: &str, args: &[&str]) -> String {
    let out = rclone_command(ip, args)
        .output()
        .expect("run rclone (scripts/test.sh installs it)");
    checked(&format!("rclone {args:?}"), out)
}

/// The `rclone` command, for a caller that checks the outcome itself.
pub fn rclone_command(ip: &str, args: &[&str]) -> Command {
    let mut c = Command::new("rclone");
    c.args(args)
        // a CA bundle named for AWS's SDK (some hosts set one) makes rclone refuse plain HTTP
        .env_remove("AWS_CA_BUNDLE")
        .env("RCLONE_CONFIG", "/dev/null")
        .env("RCLONE_CONFIG_RF_TYPE", "s3")
        .env("RCLONE_CONFIG_RF_PROVIDER", "Other")
        .env("RCLONE_CONFIG_RF_ACCESS_KEY_ID", ADMIN.0)
        .env("RCLONE_CONFIG_RF_SECRET_ACCESS_KEY", ADMIN.1)
        .env("RCLONE_CONFIG_RF_ENDPOINT", endpoint(ip))
        .env("RCLONE_CONFIG_RF_REGION", "us-east-1")
        .env("RCLONE_CONFIG_RF_FORCE_PATH_STYLE", "true");
    c
}

/// `restic <args>` on the repository `s3:<endpoint>/<bucket>` of the storage at `ip`; its
/// output.
pub fn restic(ip: &str, bucket: &str, args: &[&str]) -> String {
    let out = Command::new("restic")
        .args(args)
        .env_remove("AWS_CA_BUNDLE")
        .env("RESTIC_REPOSITORY", format!("s3:{}/{bucket}", endpoint(ip)))
        .env("RESTIC_PASSWORD", "rfdfs test repository")
        .env("AWS_ACCESS_KEY_ID", ADMIN.0)
        .env("AWS_SECRET_ACCESS_KEY", ADMIN.1)
        .env("AWS_DEFAULT_REGION", "us-east-1")
        .env(
            "RESTIC_CACHE_DIR",
            std::env::temp_dir().join("rfdfs-restic-cache"),
        )
        .output()
        .expect("run restic (scripts/test.sh installs it)");
    checked(&format!("restic {args:?}"), out)
}
