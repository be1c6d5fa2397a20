"""One generic name -> object registry, shared by models, protocols and corpora.

Built-in entries register themselves when their module is imported; the
registry imports those modules lazily on first lookup so that ``import
avbench`` stays cheap.  Third-party packages add entries through Python entry
points (``avbench.models``, ``avbench.protocols``, ``avbench.corpora``,
``avbench.conditions``, ``avbench.extractors``): each
entry point names either a module (imported for its side effects, which
register things) or a callable/object registered under the entry point's name.

Entry points are loaded lazily and one by one: looking up a built-in name
imports no plugin, looking up a plugin's name imports that plugin only, and
listing every name imports them all but sets aside those that fail
(:meth:`Registry.broken`), so that one broken package neither hides the others
nor breaks a run that does not name it.
"""

from __future__ import annotations

import importlib
import threading
from importlib.metadata import entry_points
from typing import Any, Callable, Generic, Iterator, TypeVar

from avbench.validation import did_you_mean

T = TypeVar("T")


_LOAD_LOCK = threading.RLock()  # one for all registries: loading one may load another


class RegistryError(KeyError):
    """An unknown or duplicate name; ``str()`` gives the plain message."""

    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0]) if self.args else ""


class Registry(Generic[T]):
    """Maps names to objects of one kind.

    Args:
        kind: What the entries are ("model", "protocol", "corpus"), used in
            error messages.
        group: Entry-point group searched for third-party entries.
        builtin_modules: Modules imported before the first lookup; they
            register the built-in entries.
    """

    def __init__(self, kind: str, group: str, builtin_modules: tuple[str, ...] = ()):
        self.kind = kind
        self.group = group
        self.builtin_modules = builtin_modules
        # turns the object an entry point names into an entry (or raises RegistryError); set by
        # the module owning the entries' type, e.g. models.base for MODELS
        self.coerce: Callable[[str, Any], T] | None = None
        self._entries: dict[str, T] = {}
        self._pending: dict[str, Any] = {}  # entry points not loaded yet, by name
        self._broken: dict[str, Exception] = {}  # entry points that failed to load, by name
        self._loaded = False
        self._loading = False

    def register(self, name: str, obj: T | None = None) -> Any:
        """Registers ``obj`` under ``name``; usable as a decorator when ``obj`` is None."""
        if obj is None:
            return lambda o: self.register(name, o)
        if not isinstance(name, str) or not name:
            raise ValueError(f"A {self.kind} name must be a non-empty string. Got {name!r} instead.")
        if name in self._entries and self._entries[name] is not obj:
            raise ValueError(f"The {self.kind} name {name!r} is already registered; pick another name.")
        self._entries[name] = obj
        return obj

    def unregister(self, name: str) -> None:
        """Removes an entry (used by tests and by plugins replacing their own entry)."""
        self._entries.pop(name, None)

    def _load(self) -> None:
        """Imports the built-in modules and lists the entry points, importing none of them: each is
        loaded when its name is asked for (:meth:`get`) or when every name is (:meth:`names`)."""
        # the lock makes another thread (a multi-threaded Dask worker) wait for the whole load
        # instead of seeing a half-filled registry; it is re-entrant for the loading thread
        with _LOAD_LOCK:
            if self._loaded or self._loading:
                return
            self._loading = True
            try:
                for module in self.builtin_modules:
                    importlib.import_module(module)
                self._pending = {ep.name: ep for ep in entry_points(group=self.group)}
                self._loaded = True
            finally:
                self._loading = False

    def _load_plugin(self, name: str) -> None:
        """Loads the entry point ``name`` if it is pending; a failure is kept (see :meth:`broken`)
        and raised, so that only a lookup of that name fails."""
        with _LOAD_LOCK:
            ep = self._pending.pop(name, None)
            if ep is not None:
                try:
                    self._load_entry_point(ep)
                except Exception as exc:  # whatever a plugin's import raises is the plugin's fault
                    self._broken[name] = exc
            if name in self._broken:
                raise RegistryError(str(self._broken[name])) from self._broken[name]  # --debug shows its traceback

    def _load_plugins(self) -> None:
        """Loads every pending entry point (a module may register names other than its own); the
        broken ones are kept aside without hiding the others."""
        self._load()
        for name in list(self._pending):
            try:
                self._load_plugin(name)
            except RegistryError:
                pass

    def broken(self) -> dict[str, str]:
        """Entry points that failed to load: name -> one-line error (``avbench models list`` shows them)."""
        self._load_plugins()
        return {name: str(exc).splitlines()[0] if str(exc) else type(exc).__name__
                for name, exc in sorted(self._broken.items())}

    def _load_entry_point(self, ep: Any) -> None:
        try:
            obj = ep.load()
        except Exception as exc:  # a broken plugin must not hide the built-ins
            problem = (str(exc).splitlines() or [""])[0]
            raise ImportError(
                f"The {self.kind} plugin {ep.name!r} (entry point {ep.value!r} in group "
                f"{self.group!r}) failed to load: {type(exc).__name__}: {problem}"
            ) from exc
        if isinstance(obj, type(importlib)):  # a module: importing it registered its entries
            return
        if ep.name not in self._entries:
            if self.coerce is not None:
                try:
                    obj = self.coerce(ep.name, obj)
                except RegistryError as exc:
                    raise RegistryError(f"The {self.kind} plugin {ep.name!r} (entry point {ep.value!r} in group "
                                        f"{self.group!r}): {exc}") from None
            self.register(ep.name, obj)

    def get(self, name: str) -> T:
        """Returns the entry, or raises RegistryError naming close matches and all names."""
        self._load()
        if name not in self._entries:
            if isinstance(name, str):
                self._load_plugin(name)  # the plugin of that name only; raises if it is broken
            if name not in self._entries:
                self._load_plugins()  # a plugin module may register names other than its own
        try:
            return self._entries[name]
        except KeyError:
            raise RegistryError(self.unknown_message(name)) from None

    def unknown_message(self, name: str) -> str:
        names = self.names()
        hint = did_you_mean(name, names)
        broken = f" (plugins that failed to load: {', '.join(self.broken())})" if self._broken else ""
        return f"Unknown {self.kind} {name!r}.{hint} Available: {', '.join(names)}{broken}."

    def names(self) -> list[str]:
        """Every usable name (entry points that fail to load are left out: :meth:`broken`)."""
        self._load_plugins()
        return sorted(self._entries)

    def items(self) -> Iterator[tuple[str, T]]:
        self._load_plugins()
        return iter(sorted(self._entries.items()))

    def __contains__(self, name: object) -> bool:
        try:
            self.get(name)  # type: ignore[arg-type]
        except RegistryError:
            return False
        return True

    def __len__(self) -> int:
        self._load_plugins()
        return len(self._entries)


MODELS: Registry[Any] = Registry("model", "avbench.models", ("avbench.models.auxformer", "baselines"))
PROTOCOLS: Registry[Any] = Registry("protocol", "avbench.protocols", ("protocols",))
CORPORA: Registry[Callable[..., Any]] = Registry("corpus", "avbench.corpora", ("avbench.data.corpora",))
KINDS: Registry[Any] = Registry("condition kind", "avbench.conditions", ("avbench.conditions",))
EXTRACTORS: Registry[Any] = Registry("extractor", "avbench.extractors",
                                     ("avbench.data.extract_audio", "avbench.data.embedders",
                                      "avbench.data.ssl_audio", "avbench.data.clip_faces"))
