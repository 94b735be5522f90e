"""Persistence for agents: memory, conversations, tasks and preferences, plus optional knowledge and
audit stores, behind abstract stores that any backend can implement.

The defaults are JSON files (PROJECT scope under ``<project_dir>/.agent_runtime/``, GLOBAL scope
under ``~/.agent_runtime/``, SESSION scope in memory), written atomically.
"""

from __future__ import annotations

from .audit_models import AuditEntry, AuditEventType, ErrorRecord, ErrorSeverity, PerformanceMetric
from .base import AuditStore, ConversationStore, KnowledgeStore, MemoryStore, PreferencesStore, TaskStore
from .errors import (
    CorruptStoreError,
    DependencyCycleError,
    PersistenceConfigError,
    PersistenceError,
    RecordNotFoundError,
    StoreNotConfiguredError,
    UnsupportedOperationError,
)
from .file import FileConversationStore, FileMemoryStore, FilePreferencesStore, FileTaskStore
from .file_audit import FileAuditStore
from .file_knowledge import FileKnowledgeStore
from .knowledge_models import Embedding, Fact, FactType, Summary, cosine_similarity
from .manager import (
    PersistenceConfig,
    PersistenceManager,
    configure_persistence,
    get_persistence_manager,
    reset_persistence,
)
from .models import (
    Conversation,
    ConversationMessage,
    Message,
    Scope,
    Task,
    TaskList,
    TaskState,
    ToolCall,
    ToolResult,
)

__all__ = [
    # configuration
    "PersistenceConfig",
    "PersistenceManager",
    "configure_persistence",
    "get_persistence_manager",
    "reset_persistence",
    "Scope",
    # abstract stores
    "MemoryStore",
    "ConversationStore",
    "TaskStore",
    "PreferencesStore",
    "KnowledgeStore",
    "AuditStore",
    # file stores
    "FileMemoryStore",
    "FileConversationStore",
    "FileTaskStore",
    "FilePreferencesStore",
    "FileKnowledgeStore",
    "FileAuditStore",
    # models
    "Conversation",
    "ConversationMessage",
    "Message",
    "ToolCall",
    "ToolResult",
    "Task",
    "TaskList",
    "TaskState",
    "Fact",
    "FactType",
    "Summary",
    "Embedding",
    "cosine_similarity",
    "AuditEntry",
    "AuditEventType",
    "ErrorRecord",
    "ErrorSeverity",
    "PerformanceMetric",
    # errors
    "PersistenceError",
    "PersistenceConfigError",
    "StoreNotConfiguredError",
    "CorruptStoreError",
    "RecordNotFoundError",
    "DependencyCycleError",
    "UnsupportedOperationError",
]
