"""Choosing the stores: :class:`PersistenceConfig`, the :class:`PersistenceManager` that builds them
lazily, and the process-wide manager behind :func:`configure_persistence`.

Each store can be given in one of three ways — an instance (request-scoped backends, e.g. bound to
the current user), a factory (built on first use), or a class with kwargs — or left out, in which
case the core four fall back to the file stores and the optional two (knowledge, audit) stay absent.
Giving two ways for one store is an error rather than a silent precedence rule.
"""

from __future__ import annotations

import dataclasses
import difflib
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, TypeVar, cast

from ._files import FileStoreBase, default_global_dir
from .base import AuditStore, ConversationStore, KnowledgeStore, MemoryStore, PreferencesStore, TaskStore
from .errors import PersistenceConfigError, StoreNotConfiguredError
from .file import FileConversationStore, FileMemoryStore, FilePreferencesStore, FileTaskStore

__all__ = [
    "PersistenceConfig",
    "PersistenceManager",
    "configure_persistence",
    "get_persistence_manager",
    "reset_persistence",
]

StoreKind = Literal["memory", "conversation", "task", "preferences", "knowledge", "audit"]
S = TypeVar("S")

_BASES: dict[StoreKind, type[Any]] = {
    "memory": MemoryStore,
    "conversation": ConversationStore,
    "task": TaskStore,
    "preferences": PreferencesStore,
    "knowledge": KnowledgeStore,
    "audit": AuditStore,
}
_FILE_DEFAULTS: dict[StoreKind, type[FileStoreBase]] = {
    "memory": FileMemoryStore,
    "conversation": FileConversationStore,
    "task": FileTaskStore,
    "preferences": FilePreferencesStore,
}


@dataclass(kw_only=True)
class PersistenceConfig:
    """Where data goes. ``project_dir`` defaults to the working directory and ``global_dir`` to
    ``~/.agent_runtime``; both are resolved when the manager is built, not at import."""

    project_dir: Path | str | None = None
    global_dir: Path | str | None = None

    memory_store: MemoryStore | None = None
    memory_store_factory: Callable[[], MemoryStore] | None = None
    memory_store_class: type[MemoryStore] | None = None
    memory_store_kwargs: dict[str, Any] | None = None

    conversation_store: ConversationStore | None = None
    conversation_store_factory: Callable[[], ConversationStore] | None = None
    conversation_store_class: type[ConversationStore] | None = None
    conversation_store_kwargs: dict[str, Any] | None = None

    task_store: TaskStore | None = None
    task_store_factory: Callable[[], TaskStore] | None = None
    task_store_class: type[TaskStore] | None = None
    task_store_kwargs: dict[str, Any] | None = None

    preferences_store: PreferencesStore | None = None
    preferences_store_factory: Callable[[], PreferencesStore] | None = None
    preferences_store_class: type[PreferencesStore] | None = None
    preferences_store_kwargs: dict[str, Any] | None = None

    knowledge_store: KnowledgeStore | None = None
    knowledge_store_factory: Callable[[], KnowledgeStore] | None = None
    knowledge_store_class: type[KnowledgeStore] | None = None
    knowledge_store_kwargs: dict[str, Any] | None = None

    audit_store: AuditStore | None = None
    audit_store_factory: Callable[[], AuditStore] | None = None
    audit_store_class: type[AuditStore] | None = None
    audit_store_kwargs: dict[str, Any] | None = None

    def __post_init__(self) -> None:
        for name in ("project_dir", "global_dir"):
            value = getattr(self, name)
            if value is not None and not isinstance(value, str | Path):
                raise TypeError(f"{name} must be a path, got {type(value).__name__}")
            if value is not None:
                setattr(self, name, Path(value))
        for kind, base in _BASES.items():
            self._check(kind, base)

    def _check(self, kind: StoreKind, base: type[Any]) -> None:
        store, factory, cls, kwargs = (
            getattr(self, f"{kind}_store{s}") for s in ("", "_factory", "_class", "_kwargs")
        )
        given = [
            n
            for n, v in (
                (f"{kind}_store", store),
                (f"{kind}_store_factory", factory),
                (f"{kind}_store_class", cls),
            )
            if v is not None
        ]
        if len(given) > 1:
            raise PersistenceConfigError(
                f"the {kind} store is configured {len(given)} ways ({', '.join(given)}); give only one"
            )
        if kwargs is not None and cls is None:
            raise PersistenceConfigError(
                f"{kind}_store_kwargs is only used with {kind}_store_class, which is not set"
            )
        if kwargs is not None and not isinstance(kwargs, dict):
            raise TypeError(f"{kind}_store_kwargs must be a dict, got {type(kwargs).__name__}")
        if store is not None and not isinstance(store, base):
            raise TypeError(f"{kind}_store must be a {base.__name__} instance, got {type(store).__name__}")
        if factory is not None and not callable(factory):
            raise TypeError(f"{kind}_store_factory must be callable, got {type(factory).__name__}")
        if cls is not None and not (isinstance(cls, type) and issubclass(cls, base)):
            raise TypeError(f"{kind}_store_class must be a subclass of {base.__name__}, got {cls!r}")

    def is_configured(self, kind: StoreKind) -> bool:
        """Whether the user gave this store explicitly (in any of the three ways)."""
        return any(getattr(self, f"{kind}_store{s}") is not None for s in ("", "_factory", "_class"))


class PersistenceManager:
    """One access point for every store; each is built on first access and then reused."""

    def __init__(self, config: PersistenceConfig | None = None) -> None:
        if config is not None and not isinstance(config, PersistenceConfig):
            raise TypeError(f"expected a PersistenceConfig, got {type(config).__name__}")
        self.config = config if config is not None else PersistenceConfig()
        self._stores: dict[StoreKind, Any] = {}
        self._lock = threading.Lock()

    @property
    def memory(self) -> MemoryStore:
        return cast(MemoryStore, self._get("memory"))

    @property
    def conversations(self) -> ConversationStore:
        return cast(ConversationStore, self._get("conversation"))

    @property
    def tasks(self) -> TaskStore:
        return cast(TaskStore, self._get("task"))

    @property
    def preferences(self) -> PreferencesStore:
        return cast(PreferencesStore, self._get("preferences"))

    @property
    def knowledge(self) -> KnowledgeStore:
        """Raises :class:`StoreNotConfiguredError` unless configured; check :meth:`has_knowledge`."""
        return cast(KnowledgeStore, self._get("knowledge"))

    @property
    def audit(self) -> AuditStore:
        """Raises :class:`StoreNotConfiguredError` unless configured; check :meth:`has_audit`."""
        return cast(AuditStore, self._get("audit"))

    def has_knowledge(self) -> bool:
        return self.config.is_configured("knowledge")

    def has_audit(self) -> bool:
        return self.config.is_configured("audit")

    async def close(self) -> None:
        """Close the stores built so far; stores passed in as instances are the caller's and are
        closed too, since the manager is the one handing them out."""
        with self._lock:
            stores = list(self._stores.values())
            self._stores.clear()
        for store in stores:
            await store.close()

    def _get(self, kind: StoreKind) -> Any:
        store = self._stores.get(kind)
        if store is None:
            with self._lock:
                store = self._stores.get(kind)
                if store is None:
                    store = self._stores[kind] = self._build(kind)
        return store

    def _dirs(self) -> dict[str, Path]:
        project = self.config.project_dir
        glob = self.config.global_dir
        return {
            "project_dir": Path(project) if project is not None else Path.cwd(),
            "global_dir": Path(glob) if glob is not None else default_global_dir(),
        }

    def _build(self, kind: StoreKind) -> Any:
        c = self.config
        base = _BASES[kind]
        instance = getattr(c, f"{kind}_store")
        if instance is not None:
            return instance
        factory = getattr(c, f"{kind}_store_factory")
        if factory is not None:
            store = factory()
            if not isinstance(store, base):
                raise TypeError(
                    f"{kind}_store_factory returned {type(store).__name__}, not a {base.__name__}"
                )
            return store
        cls = getattr(c, f"{kind}_store_class")
        if cls is not None:
            kwargs = dict(getattr(c, f"{kind}_store_kwargs") or {})
            if issubclass(cls, FileStoreBase):
                # A file store given as a class lands in the configured directories unless told otherwise.
                for key, value in self._dirs().items():
                    kwargs.setdefault(key, value)
            try:
                return cls(**kwargs)
            except TypeError as exc:
                raise PersistenceConfigError(
                    f"could not build {kind} store {cls.__name__}(**{kwargs!r}): {exc}"
                ) from exc
        default = _FILE_DEFAULTS.get(kind)
        if default is None:
            raise StoreNotConfiguredError(
                f"no {kind} store is configured: it is optional. Pass {kind}_store=, "
                f"{kind}_store_factory= or "
                f"{kind}_store_class= to PersistenceConfig (File{kind.capitalize()}Store is the file-based "
                f"one), and check manager.has_{kind}() before using it"
            )
        return default(**self._dirs())


_FIELDS = tuple(f.name for f in dataclasses.fields(PersistenceConfig))
_global_lock = threading.Lock()
_manager: PersistenceManager | None = None


def configure_persistence(**settings: Any) -> PersistenceManager:
    """Replace the process-wide manager with one built from ``PersistenceConfig(**settings)``.

    The previous manager is dropped, not closed: code may still hold its stores.
    """
    global _manager
    unknown = [k for k in settings if k not in _FIELDS]
    if unknown:
        hints = []
        for name in unknown:
            close = difflib.get_close_matches(name, _FIELDS, n=1)
            hints.append(f"{name!r}" + (f" (did you mean {close[0]!r}?)" if close else ""))
        raise PersistenceConfigError(f"unknown persistence setting {', '.join(hints)}")
    manager = PersistenceManager(PersistenceConfig(**settings))
    with _global_lock:
        _manager = manager
    return manager


def get_persistence_manager() -> PersistenceManager:
    """The process-wide manager; file stores under the working directory if never configured."""
    global _manager
    with _global_lock:
        if _manager is None:
            _manager = PersistenceManager(PersistenceConfig())
        return _manager


def reset_persistence() -> None:
    """Forget the process-wide manager (tests use this)."""
    global _manager
    with _global_lock:
        _manager = None
