"""Our FerretDB build: the upstream v1.24.2 module plus the source patches ``ci/services.py`` applies.

Each patch is (file in the module, text found exactly once, its replacement); the build refuses to go on when
a text is not found once, so a FerretDB upgrade cannot silently drop one. Why each one exists, and what it
did to the numbers, is in docs/services.md ("What differed", item 8).
"""

FERRETDB_VERSION = "v1.24.2"
# Our build: the version plus FERRETDB_PATCHES. It is also the version the server reports (buildInfo's
# ferretdbVersion), which is how the MongoDB adapter knows its conditional updates are atomic.
FERRETDB_BUILD = FERRETDB_VERSION + "-skalds.8"
SKALDS_ID_IN = """// skaldsIDIn: {_id: {$in: [...]}} as a WHERE on the _id index, or "" (a Skalds patch).
func skaldsIDIn(d *types.Document) (string, []any) {
	if d.Len() != 1 {
		return "", nil
	}
	in, err := d.Get("$in")
	if err != nil {
		return "", nil
	}
	arr, ok := in.(*types.Array)
	if !ok || arr.Len() == 0 {
		return "", nil
	}
	args := make([]any, 0, arr.Len())
	for i := 0; i < arr.Len(); i++ {
		e := must.NotFail(arr.Get(i))
		switch e.(type) {
		case string, types.ObjectID:
			args = append(args, string(must.NotFail(sjson.MarshalSingleValue(e))))
		default:
			return "", nil
		}
	}
	marks := strings.TrimSuffix(strings.Repeat("?, ", len(args)), ", ")
	return fmt.Sprintf(` WHERE %s IN (%s)`, metadata.IDColumn, marks), args
}
"""
SKALDS_FIELD_IN = """// skaldsFieldIn: {field: "s"} or {field: {$in: ["s", ...]}}, on a top-level field that
// leads one of the collection's indexes, as a WHERE term that index answers, or "" (a Skalds patch).
// MongoDB's equality also matches an array holding the value, so every array (JSON text from '[' up to
// '\\') passes too: the term selects a superset, and the handler applies the whole filter to what comes
// back, as it always does.
func skaldsFieldIn(meta *metadata.Collection, key string, v any) (string, []any) {
	// a dot is a path; '[', '*' and '"' would be read as path syntax by SQLite's ->
	if key == "" || strings.HasPrefix(key, "$") || strings.ContainsAny(key, ".[*\\"") {
		return "", nil
	}
	leads := false
	for _, index := range meta.Settings.Indexes {
		if len(index.Key) > 0 && index.Key[0].Field == key {
			leads = true
			break
		}
	}
	if !leads {
		return "", nil
	}
	var values []any
	switch v := v.(type) {
	case string:
		values = []any{v}
	case *types.Document:
		if v.Len() != 1 {
			return "", nil
		}
		in, err := v.Get("$in")
		if err != nil {
			return "", nil
		}
		arr, ok := in.(*types.Array)
		if !ok || arr.Len() == 0 {
			return "", nil
		}
		for i := 0; i < arr.Len(); i++ {
			e := must.NotFail(arr.Get(i))
			if _, ok := e.(string); !ok {
				return "", nil
			}
			values = append(values, e)
		}
	default:
		return "", nil
	}
	args := make([]any, len(values))
	for i, e := range values {
		args[i] = string(must.NotFail(sjson.MarshalSingleValue(e)))
	}
	column := fmt.Sprintf("%s->%q", metadata.DefaultColumn, key) // as CREATE INDEX writes it
	marks := strings.TrimSuffix(strings.Repeat("?, ", len(args)), ", ")
	return fmt.Sprintf(`(%s IN (%s) OR (%s >= '[' AND %s < '\\'))`, column, marks, column, column), args
}
"""
_WRITE_LOCK = "\tskaldsWriteMu.Lock()\n\tdefer skaldsWriteMu.Unlock()\n\n"
FERRETDB_PATCHES = (
    # FerretDB 1.24's SQLite backend writes its _id filter as `->'$._id'` while its _id index is on `->"_id"`,
    # so SQLite never uses the index and every update or lookup by _id scans the whole collection (seen with
    # EXPLAIN QUERY PLAN: SCAN vs SEARCH ... USING INDEX). Writing the filter the way the index is written
    # makes single-document writes ~10x faster here and changes no result.
    (
        "internal/backends/sqlite/metadata/metadata.go",
        "IDColumn = DefaultColumn + \"->'$._id'\"",
        'IDColumn = DefaultColumn + "->\\"_id\\""',
    ),
    # It also pushes an _id filter down only when _id is the filter's one key, so `{_id, version}` (the
    # repository's compare-and-set) and `{_id: {$in: [...]}}` (its batch reads) scanned the collection: ~3 ms
    # per statement at 10k documents. Any filter with an _id equality or a plain $in of strings/ObjectIDs now
    # uses the index; the handler still applies the whole filter to what comes back, as it always does.
    (
        "internal/backends/sqlite/collection.go",
        '\tif params.Filter.Len() == 1 {\n\t\tv, _ := params.Filter.Get("_id")\n\t\tswitch v.(type) {\n'
        "\t\tcase string, types.ObjectID:\n\t\t\twhereClause",
        '\tif params.Filter.Len() > 0 && params.Filter.Has("_id") {\n'
        '\t\tv, _ := params.Filter.Get("_id")\n\t\tswitch v := v.(type) {\n'
        "\t\tcase *types.Document:\n\t\t\twhereClause, args = skaldsIDIn(v)\n"
        "\t\tcase string, types.ObjectID:\n\t\t\twhereClause",
    ),
    (
        "internal/backends/sqlite/collection.go",
        "// check interfaces\n",
        SKALDS_ID_IN + "\n" + SKALDS_FIELD_IN + "\n// check interfaces\n",
    ),
    # Any other filter was answered by reading and decoding every document: with 100,000 tasks stored, each
    # "open tasks" or "count by status" read took ~10 s and the controller never settled. A filter on a
    # string (or a $in of strings) of a field that leads an index now reads from that index (the repository
    # indexes lifecycleStatus, executor, ...), as MongoDB would.
    (
        "internal/backends/sqlite/collection.go",
        "\tq += whereClause\n",
        '\tif whereClause == "" {\n\t\tfor _, key := range params.Filter.Keys() {\n'
        "\t\t\tv, _ := params.Filter.Get(key)\n"
        '\t\t\tif term, termArgs := skaldsFieldIn(meta, key, v); term != "" {\n'
        '\t\t\t\twhereClause, args = " WHERE "+term, termArgs\n\t\t\t\tbreak\n\t\t\t}\n\t\t}\n\t}\n\n'
        "\tq += whereClause\n",
    ),
    # A conditional write (update, delete, findAndModify) reads the matching documents, then writes them, with
    # no lock in between, so two writers of one version both "win" (ten writers: 200 wins, the counter at 28).
    # One lock around each write command's read-then-write makes every conditional write atomic, as on
    # MongoDB. SQLite has a single writer anyway; reads (find, count, aggregate) do not take the lock.
    (
        "internal/handler/handler.go",
        "type Handler struct {",
        "// skaldsWriteMu makes a write command's read-then-write atomic (a Skalds patch).\n"
        "var skaldsWriteMu sync.Mutex\n\ntype Handler struct {",
    ),
    (
        "internal/handler/msg_update.go",
        "(int32, int32, *types.Array, error) {\n",
        "(int32, int32, *types.Array, error) {\n" + _WRITE_LOCK,
    ),
    (
        "internal/handler/msg_delete.go",
        "p *common.Delete) (int32, error) {\n",
        "p *common.Delete) (int32, error) {\n" + _WRITE_LOCK,
    ),
    (
        "internal/handler/msg_findandmodify.go",
        "params *common.FindAndModifyParams) (*findAndModifyResult, error) {\n",
        "params *common.FindAndModifyParams) (*findAndModifyResult, error) {\n" + _WRITE_LOCK,
    ),
    # An update statement's read stays open (with its SQLite connection) until the whole command ends, so a
    # bulk update of more statements than the pool's 100 connections froze the server; and a read still open
    # at the write's commit keeps SQLite's WAL checkpoint from finishing, so every commit retried it (a
    # quarter of the server's CPU in a bulk update). Read the matches, close the read, then write, as FerretDB
    # does for deletes.
    (
        "internal/handler/msg_update.go",
        "\t\tcloser := iterator.NewMultiCloser()\n\t\tdefer closer.Close()\n",
        "\t\tcloser := iterator.NewMultiCloser()\n",
    ),
    (
        "internal/handler/msg_update.go",
        '\t\tresult, err := common.UpdateDocument(ctx, c, "update", iter, &u)\n',
        "\t\tmatches, err := iterator.ConsumeValues(iter)\n\t\tcloser.Close()\n\t\tif err != nil {\n"
        "\t\t\treturn 0, 0, nil, lazyerrors.Error(err)\n\t\t}\n\n"
        "\t\titer = iterator.Values(iterator.ForSlice(matches))\n\n"
        '\t\tresult, err := common.UpdateDocument(ctx, c, "update", iter, &u)\n\t\titer.Close()\n',
    ),
)
