"""Transactions, managed connections, closeASAP and database drivers."""

from peak_lite.storage.connection import ManagedConnection
from peak_lite.storage.interfaces import (
    ConnectionLostError, IConnectionFactory, IManagedConnection, InvalidURLError,
    StorageError, TransactionFailedError)
from peak_lite.storage.middleware import TransactionMiddleware
from peak_lite.storage.postgresql import PostgreSQLConnection
from peak_lite.storage.registry import beforeFork, openConnections
from peak_lite.storage.forkhygiene import inheritedSockets
from peak_lite.storage.sqlite import SQLiteConnection

__all__ = [
    'ConnectionLostError', 'IConnectionFactory', 'IManagedConnection', 'InvalidURLError',
    'ManagedConnection', 'PostgreSQLConnection', 'SQLiteConnection', 'StorageError',
    'TransactionFailedError', 'TransactionMiddleware', 'beforeFork', 'inheritedSockets',
    'openConnections',
]
