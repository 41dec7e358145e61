//! Role traits with `&mut self` state, and the macros that export them.
//!
//! The generated `Guest` traits are stateless (free functions). These traits
//! let a plugin keep its parsed config and caches in `self`; the export
//! macros hold that value in a thread-local between calls (a component
//! instance is single-threaded) and wire it to the generated exports.

use crate::{
    Column, Converted, Message, PluginConfig, PluginError, PluginInfo, RecordFailure, RowBatch, SourcePosition,
    SourceRecord, TableSchema, TransformInfo, Transformed,
};

/// Turns messages into rows of `target`.
pub trait Converter: Sized + 'static {
    /// Parse the config and prepare for rows of `target`.
    fn init(config: PluginConfig, target: TableSchema) -> Result<(Self, PluginInfo), PluginError>;
    /// Convert one batch; per-message failures go in `Converted::failures`.
    fn convert(&mut self, batch: Vec<Message>) -> Result<Converted, PluginError>;
    /// The columns a message would want (for `auto.create`). The default
    /// says the format carries no schema.
    fn infer_schema(_config: PluginConfig, _sample: Message) -> Result<Vec<Column>, PluginError> {
        Err(PluginError::schema_mismatch(
            "this converter cannot derive a table schema from a message; create the table first",
        ))
    }
}

/// Reshapes rows. See the WIT `transform` interface for schema negotiation.
pub trait Transform: Sized + 'static {
    /// `output` is the schema this transform must produce; return the input
    /// schema it needs.
    fn init(config: PluginConfig, output: Vec<Column>) -> Result<(Self, TransformInfo), PluginError>;
    fn process(&mut self, batch: RowBatch) -> Result<Transformed, PluginError>;
}

/// Writes rows to a destination of its own.
pub trait Sink: Sized + 'static {
    fn init(config: PluginConfig, schema: TableSchema) -> Result<(Self, PluginInfo), PluginError>;
    fn write(&mut self, batch: RowBatch) -> Result<Vec<RecordFailure>, PluginError>;
    fn flush(&mut self) -> Result<(), PluginError>;
}

/// Produces records for RocketMQ.
pub trait Source: Sized + 'static {
    fn init(config: PluginConfig, positions: Vec<SourcePosition>) -> Result<(Self, PluginInfo), PluginError>;
    fn poll(&mut self, max: u32) -> Result<Vec<SourceRecord>, PluginError>;
}

/// The error a plugin returns when the host calls it before `init`.
#[doc(hidden)]
pub fn not_initialised() -> PluginError {
    PluginError::fatal("plugin called before init")
}

/// Shared body of the export macros: a thread-local slot for the plugin value.
#[doc(hidden)]
#[macro_export]
macro_rules! __plugin_slot {
    ($ty:ty) => {
        ::std::thread_local! {
            static SLOT: ::core::cell::RefCell<::core::option::Option<$ty>> =
                const { ::core::cell::RefCell::new(::core::option::Option::None) };
        }
        fn with_plugin<R>(
            f: impl FnOnce(&mut $ty) -> ::core::result::Result<R, $crate::PluginError>,
        ) -> ::core::result::Result<R, $crate::PluginError> {
            SLOT.with(|slot| match slot.borrow_mut().as_mut() {
                ::core::option::Option::Some(plugin) => f(plugin),
                ::core::option::Option::None => Err($crate::__not_initialised()),
            })
        }
        fn install(plugin: $ty) {
            SLOT.with(|slot| *slot.borrow_mut() = ::core::option::Option::Some(plugin));
        }
    };
}

/// Export a [`Converter`] implementation as this component's converter.
#[macro_export]
macro_rules! export_converter {
    ($ty:ty) => {
        const _: () = {
            $crate::__plugin_slot!($ty);
            struct Export;
            impl $crate::bindings::converter::exports::rmq_openmldb::plugin::converter::Guest for Export {
                fn init(
                    config: ::std::vec::Vec<(::std::string::String, ::std::string::String)>,
                    target: $crate::TableSchema,
                ) -> ::core::result::Result<$crate::PluginInfo, $crate::PluginError> {
                    let (plugin, info) = <$ty as $crate::Converter>::init($crate::PluginConfig::new(config), target)?;
                    install(plugin);
                    Ok(info)
                }
                fn convert(
                    batch: ::std::vec::Vec<$crate::Message>,
                ) -> ::core::result::Result<$crate::Converted, $crate::PluginError> {
                    with_plugin(|plugin| <$ty as $crate::Converter>::convert(plugin, batch))
                }
                fn infer_schema(
                    config: ::std::vec::Vec<(::std::string::String, ::std::string::String)>,
                    sample: $crate::Message,
                ) -> ::core::result::Result<::std::vec::Vec<$crate::Column>, $crate::PluginError> {
                    <$ty as $crate::Converter>::infer_schema($crate::PluginConfig::new(config), sample)
                }
            }
            // Native builds (unit tests, benches) have no component exports.
            #[cfg(target_family = "wasm")]
    $crate::bindings::converter::__export_converter_world!(Export with_types_in $crate::bindings::converter);
        };
    };
}

/// Export a [`Transform`] implementation as this component's transform.
#[macro_export]
macro_rules! export_transform {
    ($ty:ty) => {
        const _: () = {
            $crate::__plugin_slot!($ty);
            struct Export;
            impl $crate::bindings::transform::exports::rmq_openmldb::plugin::transform::Guest for Export {
                fn init(
                    config: ::std::vec::Vec<(::std::string::String, ::std::string::String)>,
                    output: ::std::vec::Vec<$crate::Column>,
                ) -> ::core::result::Result<$crate::TransformInfo, $crate::PluginError> {
                    let (plugin, info) = <$ty as $crate::Transform>::init($crate::PluginConfig::new(config), output)?;
                    install(plugin);
                    Ok(info)
                }
                fn process(
                    batch: $crate::RowBatch,
                ) -> ::core::result::Result<$crate::Transformed, $crate::PluginError> {
                    with_plugin(|plugin| <$ty as $crate::Transform>::process(plugin, batch))
                }
            }
            // Native builds (unit tests, benches) have no component exports.
            #[cfg(target_family = "wasm")]
    $crate::bindings::transform::__export_transform_world!(Export with_types_in $crate::bindings::transform);
        };
    };
}

/// Export a [`Sink`] implementation as this component's sink.
#[macro_export]
macro_rules! export_sink {
    ($ty:ty) => {
        const _: () = {
            $crate::__plugin_slot!($ty);
            struct Export;
            impl $crate::bindings::sink::exports::rmq_openmldb::plugin::sink::Guest for Export {
                fn init(
                    config: ::std::vec::Vec<(::std::string::String, ::std::string::String)>,
                    schema: $crate::TableSchema,
                ) -> ::core::result::Result<$crate::PluginInfo, $crate::PluginError> {
                    let (plugin, info) = <$ty as $crate::Sink>::init($crate::PluginConfig::new(config), schema)?;
                    install(plugin);
                    Ok(info)
                }
                fn write(
                    batch: $crate::RowBatch,
                ) -> ::core::result::Result<::std::vec::Vec<$crate::RecordFailure>, $crate::PluginError> {
                    with_plugin(|plugin| <$ty as $crate::Sink>::write(plugin, batch))
                }
                fn flush() -> ::core::result::Result<(), $crate::PluginError> {
                    with_plugin(|plugin| <$ty as $crate::Sink>::flush(plugin))
                }
            }
            // Native builds (unit tests, benches) have no component exports.
            #[cfg(target_family = "wasm")]
    $crate::bindings::sink::__export_sink_world!(Export with_types_in $crate::bindings::sink);
        };
    };
}

/// Export a [`Source`] implementation as this component's source.
#[macro_export]
macro_rules! export_source {
    ($ty:ty) => {
        const _: () = {
            $crate::__plugin_slot!($ty);
            struct Export;
            impl $crate::bindings::source::exports::rmq_openmldb::plugin::source::Guest for Export {
                fn init(
                    config: ::std::vec::Vec<(::std::string::String, ::std::string::String)>,
                    positions: ::std::vec::Vec<$crate::SourcePosition>,
                ) -> ::core::result::Result<$crate::PluginInfo, $crate::PluginError> {
                    let (plugin, info) = <$ty as $crate::Source>::init($crate::PluginConfig::new(config), positions)?;
                    install(plugin);
                    Ok(info)
                }
                fn poll(
                    max: u32,
                ) -> ::core::result::Result<::std::vec::Vec<$crate::SourceRecord>, $crate::PluginError> {
                    with_plugin(|plugin| <$ty as $crate::Source>::poll(plugin, max))
                }
            }
            // Native builds (unit tests, benches) have no component exports.
            #[cfg(target_family = "wasm")]
    $crate::bindings::source::__export_source_world!(Export with_types_in $crate::bindings::source);
        };
    };
}
