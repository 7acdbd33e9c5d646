fn main() {
    let args: Vec<String> = std::env::args().collect();
    std::process::exit(fdfs_common::daemon::main(
        fdfs_storage::SPEC,
        args,
        fdfs_storage::run,
    ));
}
