fn main() {
    let args: Vec<String> = std::env::args().collect();
    std::process::exit(fdfs_common::daemon::main(
        fdfs_tracker::SPEC,
        args,
        fdfs_tracker::run,
    ));
}
