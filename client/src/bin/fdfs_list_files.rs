fn main() {
    let args: Vec<String> = std::env::args().collect();
    std::process::exit(fdfs_client::tools::list_files::fdfs_list_files(&args));
}
