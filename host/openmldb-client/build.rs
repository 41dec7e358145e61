//! Generates the protobuf messages from OpenMLDB's v0.9.2 `.proto` files and
//! brpc's baidu_std `RpcMeta`, vendored unchanged under `proto/`.

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let files = [
        "proto/openmldb/type.proto",
        "proto/openmldb/common.proto",
        "proto/openmldb/sql_procedure.proto",
        "proto/openmldb/tablet.proto",
        "proto/openmldb/name_server.proto",
        "proto/brpc/policy/baidu_rpc_meta.proto",
    ];
    for file in files {
        println!("cargo:rerun-if-changed={file}");
    }
    println!("cargo:rerun-if-changed=proto/brpc/options.proto");
    println!("cargo:rerun-if-changed=proto/brpc/streaming_rpc_meta.proto");
    let descriptors = protox::compile(files, ["proto/openmldb", "proto"])?;
    prost_build::Config::new().compile_fds(descriptors)?;
    Ok(())
}
