-- A Kiln tracking database at schema version 1 (as Kiln wrote it before version 2 added the
-- metrics' epoch, data files, confusion matrices, artifacts and the registry), with one finished
-- run. tests/track/store_test.cpp (SchemaUpgradeFromVersion1) opens it with the current Store.
PRAGMA user_version = 1;
CREATE TABLE experiments(id INTEGER PRIMARY KEY, name TEXT NOT NULL UNIQUE,
                         created_ms INTEGER NOT NULL);
CREATE TABLE runs(id TEXT PRIMARY KEY, experiment_id INTEGER NOT NULL REFERENCES experiments(id),
                  name TEXT NOT NULL DEFAULT '', status TEXT NOT NULL, start_ms INTEGER NOT NULL,
                  end_ms INTEGER, git_commit TEXT NOT NULL DEFAULT '',
                  command TEXT NOT NULL DEFAULT '', host TEXT NOT NULL DEFAULT '',
                  pid INTEGER NOT NULL DEFAULT 0, proc_start TEXT NOT NULL DEFAULT '');
CREATE INDEX runs_by_experiment ON runs(experiment_id, start_ms);
CREATE TABLE params(run_id TEXT NOT NULL REFERENCES runs(id), key TEXT NOT NULL,
                    value TEXT NOT NULL, PRIMARY KEY(run_id, key));
CREATE TABLE tags(run_id TEXT NOT NULL REFERENCES runs(id), key TEXT NOT NULL,
                  value TEXT NOT NULL, PRIMARY KEY(run_id, key));
CREATE TABLE metrics(run_id TEXT NOT NULL REFERENCES runs(id), key TEXT NOT NULL,
                     step INTEGER NOT NULL, value REAL, time_ms INTEGER NOT NULL);
CREATE INDEX metrics_by_run ON metrics(run_id, key, step);
INSERT INTO experiments VALUES(1, 'legacy', 1700000000000);
INSERT INTO runs VALUES('0123456789ab', 1, 'old run', 'finished', 1700000000000, 1700000060000,
                        'a94a8fe5ccb19ba61c4c0873d391e987982fbbd3', 'kiln text-classification train',
                        'elsewhere', 4242, '99');
INSERT INTO params VALUES('0123456789ab', 'lr', '0.001');
INSERT INTO tags VALUES('0123456789ab', 'note', 'made by schema 1');
INSERT INTO metrics VALUES('0123456789ab', 'loss', 10, 0.9, 1700000010000);
INSERT INTO metrics VALUES('0123456789ab', 'loss', 20, 0.5, 1700000020000);
INSERT INTO metrics VALUES('0123456789ab', 'loss', 30, 0.25, 1700000030000);
INSERT INTO metrics VALUES('0123456789ab', 'accuracy', 30, 0.875, 1700000030000);
