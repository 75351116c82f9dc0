"""The SQLite schema as forward-only migrations, tracked by ``PRAGMA user_version``.

Each entry of ``MIGRATIONS`` moves the schema from version i to i+1; a database opened by an
older gateway is brought forward on open, and one written by a newer gateway is refused
rather than misread.
"""

from __future__ import annotations

from typing import Final

__all__ = ["MIGRATIONS", "SCHEMA_VERSION"]

MIGRATIONS: Final[tuple[str, ...]] = (
    # 1: messages, their history and segments, operator-id correlation, tenant outbox.
    """
    CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL) WITHOUT ROWID;
    CREATE TABLE messages (
        id TEXT PRIMARY KEY,
        tenant TEXT NOT NULL,
        source_addr TEXT NOT NULL,
        destination_addr TEXT NOT NULL,
        source_addr_ton INTEGER NOT NULL,
        source_addr_npi INTEGER NOT NULL,
        dest_addr_ton INTEGER NOT NULL,
        dest_addr_npi INTEGER NOT NULL,
        service_type TEXT NOT NULL,
        esm_class INTEGER NOT NULL,
        protocol_id INTEGER NOT NULL,
        priority_flag INTEGER NOT NULL,
        registered_delivery INTEGER NOT NULL,
        data_coding INTEGER NOT NULL,
        schedule_delivery_time TEXT NOT NULL,
        validity_period TEXT NOT NULL,
        body BLOB NOT NULL,
        tlvs BLOB NOT NULL,
        status TEXT NOT NULL,
        created_at REAL NOT NULL,
        expires_at REAL NOT NULL,
        operator TEXT NOT NULL,
        error INTEGER NOT NULL,
        updated_at REAL NOT NULL
    ) WITHOUT ROWID;
    CREATE INDEX messages_accepted ON messages (id) WHERE status = 'accepted';
    CREATE TABLE history (
        message_id TEXT NOT NULL,
        status TEXT NOT NULL,
        at REAL NOT NULL,
        detail TEXT NOT NULL
    );
    CREATE INDEX history_message ON history (message_id);
    CREATE TABLE segments (
        message_id TEXT NOT NULL,
        part INTEGER NOT NULL,
        parts INTEGER NOT NULL,
        operator TEXT NOT NULL,
        operator_id TEXT NOT NULL,
        status TEXT NOT NULL,
        error INTEGER NOT NULL,
        PRIMARY KEY (message_id, part)
    ) WITHOUT ROWID;
    CREATE INDEX segments_operator_id ON segments (operator, operator_id);
    CREATE TABLE outbox (
        id INTEGER PRIMARY KEY,
        tenant TEXT NOT NULL,
        kind TEXT NOT NULL,
        pdu BLOB NOT NULL,
        message_id TEXT NOT NULL,
        created_at REAL NOT NULL,
        attempts INTEGER NOT NULL,
        next_attempt_at REAL NOT NULL
    );
    CREATE INDEX outbox_tenant ON outbox (tenant, id);
    """,
    # 2: parts of concatenated MO messages, kept until the whole message is in the outbox,
    # so a part acknowledged to the operator survives a restart.
    """
    CREATE TABLE mo_parts (
        operator TEXT NOT NULL,
        source_addr TEXT NOT NULL,
        destination_addr TEXT NOT NULL,
        data_coding INTEGER NOT NULL,
        reference INTEGER NOT NULL,
        total INTEGER NOT NULL,
        seqnum INTEGER NOT NULL,
        user_data BLOB NOT NULL,
        received_at REAL NOT NULL,
        PRIMARY KEY (operator, source_addr, destination_addr, data_coding, reference, total,
                     seqnum)
    ) WITHOUT ROWID;
    """,
    # 3: messages still waiting for their receipt, by operator and age (receipt timeout).
    """
    CREATE INDEX messages_submitted ON messages (operator, updated_at)
        WHERE status = 'submitted';
    """,
    # 4: the outbox of encoded deliver_sm becomes a queue of channel-neutral events
    # (MessagePack, ``routing.events``). What waits in an old outbox is kept as kind 'pdu'
    # (an encoded deliver_sm) and still delivered.
    """
    CREATE TABLE events (
        id INTEGER PRIMARY KEY,
        tenant TEXT NOT NULL,
        kind TEXT NOT NULL,
        body BLOB NOT NULL,
        message_id TEXT NOT NULL,
        created_at REAL NOT NULL,
        attempts INTEGER NOT NULL,
        next_attempt_at REAL NOT NULL
    );
    INSERT INTO events SELECT id, tenant, 'pdu', pdu, message_id, created_at, attempts,
        next_attempt_at FROM outbox;
    DROP TABLE outbox;
    CREATE INDEX events_tenant ON events (tenant, id);
    """,
    # 5: the HTTP door. A message keeps the request it came in and the caller's reference;
    # an event can be kept as failed (a webhook that gave up), and answers to requests with
    # an Idempotency-Key are kept for replay.
    """
    ALTER TABLE messages ADD COLUMN request_id TEXT NOT NULL DEFAULT '';
    ALTER TABLE messages ADD COLUMN reference TEXT NOT NULL DEFAULT '';
    ALTER TABLE messages ADD COLUMN report_url TEXT NOT NULL DEFAULT '';
    CREATE INDEX messages_request ON messages (request_id, CAST(id AS INTEGER))
        WHERE request_id != '';
    -- Listings go newest first by the id's number: as text, ids of a later epoch with one
    -- more digit would sort below older ones.
    CREATE INDEX messages_tenant ON messages (tenant, CAST(id AS INTEGER));
    ALTER TABLE events ADD COLUMN failed INTEGER NOT NULL DEFAULT 0;
    CREATE TABLE idempotency (
        tenant TEXT NOT NULL,
        key TEXT NOT NULL,
        fingerprint TEXT NOT NULL,
        status INTEGER NOT NULL,
        response BLOB NOT NULL,
        created_at REAL NOT NULL,
        PRIMARY KEY (tenant, key)
    ) WITHOUT ROWID;
    CREATE INDEX idempotency_age ON idempotency (created_at);
    """,
    # 6: consent: opt-out and opt-in records per tenant and number, history kept (a
    # change is a new row, never an update; the latest row of a number is its state).
    """
    CREATE TABLE consent (
        tenant TEXT NOT NULL,
        number TEXT NOT NULL,
        state TEXT NOT NULL,
        source TEXT NOT NULL,
        detail TEXT NOT NULL,
        inbound_id TEXT NOT NULL,
        at REAL NOT NULL
    );
    CREATE INDEX consent_number ON consent (tenant, number, at);
    CREATE INDEX consent_time ON consent (tenant, at);
    """,
    # 7: stored templates per tenant (routing.templates keeps them all in memory).
    """
    CREATE TABLE templates (
        tenant TEXT NOT NULL,
        name TEXT NOT NULL,
        content TEXT NOT NULL,
        created_at REAL NOT NULL,
        updated_at REAL NOT NULL,
        PRIMARY KEY (tenant, name)
    ) WITHOUT ROWID;
    """,
    # 8: scheduled messages (send_at; held until due, quiet hours included). The scheduler
    # reads the next due ones through messages_scheduled (ORDER BY send_at LIMIT n);
    # replace_if_present and cancel_sm by address find a tenant's scheduled ones by
    # destination through messages_scheduled_to. Both hold only rows still scheduled.
    """
    ALTER TABLE messages ADD COLUMN send_at REAL NOT NULL DEFAULT 0;
    CREATE INDEX messages_scheduled ON messages (send_at) WHERE status = 'scheduled';
    CREATE INDEX messages_scheduled_to ON messages (tenant, destination_addr)
        WHERE status = 'scheduled';
    """,
    # 9: tracked links and their clicks (routing.links). A click keeps its time and whether
    # a bot fetched it (a link preview, a HEAD request), never an IP address.
    """
    CREATE TABLE links (
        code TEXT PRIMARY KEY,
        tenant TEXT NOT NULL,
        message_id TEXT NOT NULL,
        url TEXT NOT NULL,
        created_at REAL NOT NULL
    ) WITHOUT ROWID;
    CREATE INDEX links_message ON links (message_id);
    CREATE TABLE clicks (
        code TEXT NOT NULL,
        tenant TEXT NOT NULL,
        message_id TEXT NOT NULL,
        at REAL NOT NULL,
        bot INTEGER NOT NULL
    );
    CREATE INDEX clicks_tenant_at ON clicks (tenant, at);
    CREATE INDEX clicks_message ON clicks (message_id);
    """,
    # 10: analytics rollups (routing.analytics): per tenant, hour and message shape
    # (operator, recipient country, originator) the counts and a latency histogram (b0..b15:
    # LATENCY_BOUNDS), and failures by error code; one upsert per touched row per commit.
    """
    CREATE TABLE rollups (
        tenant TEXT NOT NULL,
        hour INTEGER NOT NULL,
        operator TEXT NOT NULL,
        country TEXT NOT NULL,
        originator TEXT NOT NULL,
        submitted INTEGER NOT NULL, taken INTEGER NOT NULL, delivered INTEGER NOT NULL,
        failed INTEGER NOT NULL, parts INTEGER NOT NULL, inbound INTEGER NOT NULL,
        latency_ms INTEGER NOT NULL,
        b0 INTEGER NOT NULL, b1 INTEGER NOT NULL, b2 INTEGER NOT NULL, b3 INTEGER NOT NULL,
        b4 INTEGER NOT NULL, b5 INTEGER NOT NULL, b6 INTEGER NOT NULL, b7 INTEGER NOT NULL,
        b8 INTEGER NOT NULL, b9 INTEGER NOT NULL, b10 INTEGER NOT NULL, b11 INTEGER NOT NULL,
        b12 INTEGER NOT NULL, b13 INTEGER NOT NULL, b14 INTEGER NOT NULL,
        b15 INTEGER NOT NULL,
        PRIMARY KEY (tenant, hour, operator, country, originator)
    ) WITHOUT ROWID;
    CREATE TABLE rollup_errors (
        tenant TEXT NOT NULL,
        hour INTEGER NOT NULL,
        operator TEXT NOT NULL,
        country TEXT NOT NULL,
        originator TEXT NOT NULL,
        error INTEGER NOT NULL,
        n INTEGER NOT NULL,
        PRIMARY KEY (tenant, hour, operator, country, originator, error)
    ) WITHOUT ROWID;
    """,
    # 11: history clustered by message (issue 15): one B-tree instead of a table and its
    # index, so each row costs one insert and a commit touches one page fewer. ``seq`` keeps
    # the order rows were written in (old rows keep their rowid; new ones are numbered from
    # the store's epoch, above every old one).
    """
    CREATE TABLE history_by_message (
        message_id TEXT NOT NULL,
        seq INTEGER NOT NULL,
        status TEXT NOT NULL,
        at REAL NOT NULL,
        detail TEXT NOT NULL,
        PRIMARY KEY (message_id, seq)
    ) WITHOUT ROWID;
    INSERT INTO history_by_message SELECT message_id, rowid, status, at, detail FROM history;
    DROP TABLE history;
    ALTER TABLE history_by_message RENAME TO history;
    """,
    # 12: the node that sends a waiting message, when it is not the one that accepted it
    # (issue 14: a node without a bind to the message's operator hands it to a node with
    # one); NULL: the epoch in its id (routing.sqlite.owners).
    """
    ALTER TABLE messages ADD COLUMN owner INTEGER;
    """,
)
SCHEMA_VERSION: Final = len(MIGRATIONS)
