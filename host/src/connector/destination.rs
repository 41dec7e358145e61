//! Where each message of a sink connector goes: its table, resolved per
//! message from `table.name.format` (and `table.name.from.header`), and,
//! per table, the writer and the converter chain built against that
//! table's schema. A connector reading several topics writes each into its
//! own table; the first message for a table opens it (creating it with
//! `auto.create` from a message that declares a schema).

use super::SinkSettings;
use super::SinkTarget;
use super::plugin_sink::{PluginSinkError, PluginSinkWriter, open_plugin_sink};
use super::sink::{SinkError, plugin_message};
use crate::openmldb::{OpenMldbWriter, WriteObserver, WriteReport, WriterError};
use crate::plugin::bindings::{Column, Needs, Row, TableSchema};
use crate::plugin::{ChainError, ConverterInstance, PluginCatalog, PluginChain, PluginEngine, PluginServices, Role};
use crate::rocketmq::ConsumedMessage;
use serde::de::{Deserializer, IgnoredAny, MapAccess, Visitor};
use std::borrow::Cow;
use std::sync::Arc;
use tokio_util::sync::CancellationToken;

/// The property RocketMQ Connect's JDBC source puts the source table in
/// (`table.name.from.header`).
pub const SOURCE_TABLE_PROPERTY: &str = "__source_table";

/// `table.name.format` with its placeholders: `${topic}` (the message's
/// own topic) and `${schema}` (the name of the JsonConverter envelope's
/// schema, which is what RocketMQ Connect's JDBC sink writes into).
#[derive(Debug, Clone, PartialEq)]
pub struct TableNameFormat {
    template: String,
    /// `table.name.from.header`: the `__source_table` property, when a
    /// message has it, wins over the template.
    from_header: bool,
}

impl TableNameFormat {
    pub fn new(template: &str, from_header: bool) -> TableNameFormat {
        TableNameFormat { template: template.to_string(), from_header }
    }

    /// The table when it does not depend on the message.
    pub fn fixed(&self) -> Option<&str> {
        (!self.from_header && !self.template.contains("${")).then_some(self.template.as_str())
    }

    /// What the config says, for logs and `connector sink`.
    pub fn describe(&self) -> String {
        if self.from_header {
            format!("{SOURCE_TABLE_PROPERTY} property, else {}", self.template)
        } else {
            self.template.clone()
        }
    }

    /// The table `message` goes to, or why it has none (a refusal of that
    /// message alone).
    pub fn resolve<'m>(&'m self, message: &'m ConsumedMessage) -> Result<Cow<'m, str>, String> {
        if self.from_header
            && let Some((_, table)) = message.properties.iter().find(|(k, _)| k == SOURCE_TABLE_PROPERTY)
        {
            return checked(Cow::Borrowed(table.as_str()), "the __source_table property");
        }
        if let Some(table) = self.fixed() {
            return Ok(Cow::Borrowed(table));
        }
        let mut table = self.template.replace("${topic}", &message.queue.topic);
        if table.contains("${schema}") {
            let schema = envelope_schema_name(&message.body).ok_or_else(|| {
                format!(
                    "table.name.format \"{}\" needs the envelope's schema name, and this message has none \
                     (it is not a JsonConverter envelope with \"schema\": {{\"name\": …}})",
                    self.template
                )
            })?;
            table = table.replace("${schema}", &schema);
        }
        checked(Cow::Owned(table), &format!("table.name.format \"{}\"", self.template))
    }
}

/// Table names go unquoted into URLs and SQL: letters, digits and `_`.
fn checked<'m>(table: Cow<'m, str>, from: &str) -> Result<Cow<'m, str>, String> {
    let valid = !table.is_empty() && table.len() <= 128 && table.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
    if valid {
        Ok(table)
    } else {
        Err(format!("{from} gives the table name {table:?}, which is not letters, digits and '_'"))
    }
}

/// `schema.name` of a JsonConverter envelope, without building the payload.
pub fn envelope_schema_name(body: &[u8]) -> Option<String> {
    struct Top;
    impl<'de> Visitor<'de> for Top {
        type Value = Option<String>;
        fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
            f.write_str("an envelope")
        }
        fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
            let mut name = None;
            while let Some(key) = map.next_key::<Cow<'de, str>>()? {
                if key == "schema" {
                    name = map.next_value::<SchemaName>()?.0;
                } else {
                    map.next_value::<IgnoredAny>()?;
                }
            }
            Ok(name)
        }
    }
    struct SchemaName(Option<String>);
    impl<'de> serde::Deserialize<'de> for SchemaName {
        fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
            struct Fields;
            impl<'de> Visitor<'de> for Fields {
                type Value = SchemaName;
                fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                    f.write_str("a schema object")
                }
                fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<SchemaName, A::Error> {
                    let mut name = None;
                    while let Some(key) = map.next_key::<Cow<'de, str>>()? {
                        if key == "name" {
                            name = map.next_value::<Option<String>>()?;
                        } else {
                            map.next_value::<IgnoredAny>()?;
                        }
                    }
                    Ok(SchemaName(name))
                }
                fn visit_unit<E>(self) -> Result<SchemaName, E> {
                    Ok(SchemaName(None))
                }
            }
            deserializer.deserialize_any(Fields)
        }
    }
    let mut deserializer = serde_json::Deserializer::from_slice(body);
    deserializer.deserialize_map(Top).ok().flatten()
}

/// Where a table's rows are written.
pub enum RowWriter {
    OpenMldb(Box<OpenMldbWriter>),
    Plugin(PluginSinkWriter),
}

impl RowWriter {
    pub fn schema(&self) -> &TableSchema {
        match self {
            RowWriter::OpenMldb(writer) => writer.schema(),
            RowWriter::Plugin(writer) => writer.schema(),
        }
    }

    /// Whether the destination can take `row` at all (types, NULLs, and
    /// what OpenMLDB refuses); checked before anything is written.
    pub fn validate(&self, row: &Row) -> Result<(), String> {
        match self {
            RowWriter::OpenMldb(writer) => writer.validate(row),
            RowWriter::Plugin(writer) => crate::plugin::check_row(row, &writer.schema().columns),
        }
    }

    pub async fn write(
        &mut self,
        rows: &[Row],
        cancel: &CancellationToken,
        observer: &dyn WriteObserver,
    ) -> WriteReport {
        match self {
            RowWriter::OpenMldb(writer) => writer.write_observed(rows, cancel, observer).await,
            RowWriter::Plugin(writer) => writer.write(rows, cancel, observer).await,
        }
    }

    /// The stage named in dead letters of rows the destination refused.
    pub fn stage(&self) -> String {
        match self {
            RowWriter::OpenMldb(_) => "writer openmldb".into(),
            RowWriter::Plugin(writer) => format!("sink {}", writer.plugin()),
        }
    }

    pub fn destination(&self) -> String {
        match self {
            RowWriter::OpenMldb(writer) => format!("OpenMLDB table {}", writer.schema().table),
            RowWriter::Plugin(writer) => format!("sink plugin {} (table {})", writer.plugin(), writer.schema().table),
        }
    }
}

/// A table opened for a task: its writer and the chain that builds its rows.
pub struct Opened {
    pub writer: RowWriter,
    pub chain: PluginChain,
}

/// Why a table could not be opened yet.
pub enum OpenOutcome {
    Opened(Box<Opened>),
    /// `auto.create` needs a message that declares the table's columns and
    /// none of these does; they wait for one.
    NeedsSchema,
}

/// Connect the writer for `table` (creating the table from the first of
/// `messages` that declares a schema, when `auto.create` asks) and build
/// the plugin chain for its schema.
pub async fn open(
    settings: &SinkSettings,
    engine: &Arc<PluginEngine>,
    catalog: &PluginCatalog,
    table: &str,
    messages: &[&ConsumedMessage],
) -> Result<OpenOutcome, SinkError> {
    let connector = settings.connector.as_str();
    let record_columns = if settings.target.auto_create() {
        declared_columns(settings, engine, catalog, table, messages)?
    } else {
        None
    };
    let writer = match &settings.target {
        SinkTarget::OpenMldb(config) => {
            match OpenMldbWriter::connect(config.clone(), table, record_columns.as_deref()).await {
                Ok(writer) => RowWriter::OpenMldb(Box::new(writer)),
                Err(WriterError::NoSchemaToCreate { .. }) => return Ok(OpenOutcome::NeedsSchema),
                Err(e) => return Err(e.into()),
            }
        }
        SinkTarget::Plugin(config) => {
            match open_plugin_sink(config, engine, catalog, connector, table, record_columns).await {
                Ok(writer) => RowWriter::Plugin(writer),
                Err(PluginSinkError::NoSchemaYet { .. }) => return Ok(OpenOutcome::NeedsSchema),
                Err(e) => return Err(e.into()),
            }
        }
    };
    let schema = writer.schema().clone();
    let chain = tokio::task::block_in_place(|| {
        PluginChain::new(engine, catalog, &settings.converter, &settings.transforms, schema, connector)
    })?;
    tracing::info!(connector, table, "destination ready: {}", writer.destination());
    Ok(OpenOutcome::Opened(Box::new(Opened { writer, chain })))
}

/// The columns the first message that declares a schema asks for.
fn declared_columns(
    settings: &SinkSettings,
    engine: &Arc<PluginEngine>,
    catalog: &PluginCatalog,
    table: &str,
    messages: &[&ConsumedMessage],
) -> Result<Option<Vec<Column>>, SinkError> {
    let connector = settings.connector.as_str();
    let plugin = engine
        .load(catalog.resolve(&settings.converter.plugin).map_err(ChainError::from)?, Some(Role::Converter))
        .map_err(ChainError::from)?;
    for message in messages {
        let sample = plugin_message(message, Needs::all());
        let services =
            PluginServices::sandboxed(plugin.name.clone(), connector, settings.converter.sandbox.clone(), None);
        let inferred = tokio::task::block_in_place(|| {
            ConverterInstance::infer_schema(engine, plugin.clone(), &settings.converter.config, &sample, services)
        });
        match inferred {
            Ok(columns) => return Ok(Some(columns)),
            Err(e) => tracing::debug!(
                connector,
                table,
                "auto.create: message {} declares no schema: {e}",
                message.queue_offset
            ),
        }
    }
    tracing::debug!(connector, table, "auto.create: none of the {} messages so far declares a schema", messages.len());
    Ok(None)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rocketmq::QueueId;

    fn message(topic: &str, body: &str, properties: &[(&str, &str)]) -> ConsumedMessage {
        ConsumedMessage {
            queue: QueueId { topic: topic.into(), broker: "b".into(), queue_id: 0 },
            queue_offset: 0,
            message_id: String::new(),
            born_timestamp: 0,
            store_timestamp: 0,
            keys: None,
            tags: None,
            properties: properties.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect(),
            body: body.as_bytes().to_vec().into(),
        }
    }

    #[test]
    fn each_message_goes_to_its_own_topics_table() {
        let format = TableNameFormat::new("${topic}", false);
        assert_eq!(format.fixed(), None);
        assert_eq!(format.resolve(&message("orders", "{}", &[])).unwrap(), "orders");
        assert_eq!(format.resolve(&message("users", "{}", &[])).unwrap(), "users");
        let prefixed = TableNameFormat::new("kafka_${topic}", false);
        assert_eq!(prefixed.resolve(&message("a", "{}", &[])).unwrap(), "kafka_a");
        assert_eq!(TableNameFormat::new("fixed", false).fixed(), Some("fixed"));
    }

    #[test]
    fn the_envelope_schema_name_and_the_source_table_header_can_name_the_table() {
        let envelope = r#"{"schema":{"type":"struct","fields":[],"name":"employee_test"},"payload":{"id":1}}"#;
        let by_schema = TableNameFormat::new("${schema}", false);
        assert_eq!(by_schema.resolve(&message("t", envelope, &[])).unwrap(), "employee_test");
        let err = by_schema.resolve(&message("t", r#"{"id": 1}"#, &[])).unwrap_err();
        assert!(err.contains("schema name"), "{err}");
        let by_header = TableNameFormat::new("${topic}", true);
        assert_eq!(by_header.resolve(&message("t", "{}", &[(SOURCE_TABLE_PROPERTY, "src")])).unwrap(), "src");
        assert_eq!(by_header.resolve(&message("t", "{}", &[])).unwrap(), "t");
    }

    #[test]
    fn a_name_that_cannot_be_a_table_refuses_the_message_naming_it() {
        let by_header = TableNameFormat::new("${topic}", true);
        let err = by_header.resolve(&message("t", "{}", &[(SOURCE_TABLE_PROPERTY, "a;drop")])).unwrap_err();
        assert_eq!(
            err,
            "the __source_table property gives the table name \"a;drop\", which is not letters, digits and '_'"
        );
        let err = TableNameFormat::new("${topic}", false).resolve(&message("a-b", "{}", &[])).unwrap_err();
        assert!(err.contains("\"a-b\""), "{err}");
    }
}
