fn main() {
    let args: Vec<String> = std::env::args().collect();
    std::process::exit(fdfs_client::tools::admin::rfdfs_admin(&args));
}
