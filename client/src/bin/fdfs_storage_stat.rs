fn main() {
    let args: Vec<String> = std::env::args().collect();
    std::process::exit(fdfs_client::stat_tools::fdfs_storage_stat(&args));
}
