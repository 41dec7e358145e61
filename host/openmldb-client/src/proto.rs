//! The protobuf messages, generated from the vendored `.proto` files.

#![allow(clippy::all, missing_docs)]

pub mod openmldb {
    pub mod r#type {
        include!(concat!(env!("OUT_DIR"), "/openmldb.r#type.rs"));
    }
    pub mod common {
        include!(concat!(env!("OUT_DIR"), "/openmldb.common.rs"));
    }
    pub mod api {
        include!(concat!(env!("OUT_DIR"), "/openmldb.api.rs"));
    }
    pub mod nameserver {
        include!(concat!(env!("OUT_DIR"), "/openmldb.nameserver.rs"));
    }
}

pub mod brpc {
    include!(concat!(env!("OUT_DIR"), "/brpc.rs"));
    pub mod policy {
        include!(concat!(env!("OUT_DIR"), "/brpc.policy.rs"));
    }
}

pub use openmldb::api::{Dimension, PutRequest, PutResponse};
pub use openmldb::common::{ColumnDesc, ColumnKey};
pub use openmldb::nameserver::{PartitionMeta, TableInfo, TablePartition};
