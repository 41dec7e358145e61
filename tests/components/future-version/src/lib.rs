//! A converter that claims contract version 0.2.0, which the host must
//! refuse at load time with a message naming both versions.

wit_bindgen::generate!({
    inline: "
        package rmq-openmldb:plugin@0.2.0;
        interface converter {
            convert: func(batch: list<u8>) -> u32;
        }
        world future-converter {
            export converter;
        }
    ",
});

#[cfg_attr(not(target_family = "wasm"), allow(dead_code))]
struct Future;

impl exports::rmq_openmldb::plugin::converter::Guest for Future {
    fn convert(batch: Vec<u8>) -> u32 {
        batch.len() as u32
    }
}

// Native builds (cargo test --workspace) have no component exports.
#[cfg(target_family = "wasm")]
export!(Future);
