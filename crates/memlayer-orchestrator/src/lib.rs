#![doc = include_str!("../README.md")]
#![warn(missing_docs)]

pub mod events;
pub mod extraction;
pub mod llm;
pub mod long_term;
#[cfg(feature = "redis-streams")]
pub mod redis_sink;
pub mod rules;
pub mod short_term;
pub mod summary;
pub mod sweeper;
pub mod window;

#[allow(deprecated)]
pub use events::MemoryEventEmitter;
pub use events::{EventSink, EventStore, MemoryEvent};
pub use extraction::{
    DeadLetter, Extractor, MemoryOrchestrator, OrchestratorConfig, TaskReport, TaskState,
};
pub use llm::{ChatClient, LlmExtractor};
pub use long_term::{AddOutcome, ExtractionType, LongTermMemory, NewMemory, Triple};
#[cfg(feature = "redis-streams")]
pub use redis_sink::RedisStreamSink;
pub use rules::RuleExtractor;
pub use short_term::{Scope, ShortTermMemory};
pub use summary::{
    ExtractiveSummarizer, LlmSummarizer, Summarizer, SummaryConfig, SummaryTemplate,
};
pub use sweeper::{DecayPolicy, SweepReport, Sweeper, SweeperHandle};
pub use window::{CharsPerFour, TokenCounter, Window, WindowConfig};
