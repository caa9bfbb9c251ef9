package consistency

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/lifeboat-backup/lifeboat/internal/engine"
)

// SaveTimeout bounds the wait for a database's own save of a large data
// set.
const SaveTimeout = 15 * time.Minute

// RedisSave has the server write its data set to its RDB file now and
// waits for it: BGSAVE (retried while another save or an AOF rewrite
// runs), then rdb_bgsave_in_progress:0 and rdb_last_bgsave_status:ok from
// INFO persistence. BGSAVE forks before it answers, so once it has said
// "started" the flag covers this save. redis-cli exits 0 on an error
// reply: the answers are read, not the exit status.
func RedisSave() []string {
	return []string{"sh", "-c", redisAuth() + `while :; do
  r=$(redis-cli BGSAVE 2>&1)
  case "$r" in
    "Background saving started"*) break ;;
    *"in progress"*) sleep 0.1 ;;
    *) echo "BGSAVE: $r" >&2; exit 1 ;;
  esac
done
while :; do
  info=$(redis-cli INFO persistence 2>&1 | tr -d '\r')
  case "$info" in
    *rdb_bgsave_in_progress:0*) break ;;
    *rdb_bgsave_in_progress:1*) sleep 0.1 ;;
    *) echo "INFO persistence: $info" >&2; exit 1 ;;
  esac
done
case "$info" in
  *rdb_last_bgsave_status:ok*) ;;
  *) echo "the background save failed: $(echo "$info" | grep rdb_last_bgsave_status); see the server's log" >&2; exit 1 ;;
esac`}
}

// SaveFiles makes the files of the unit's running databases current
// before the unit is frozen, stopped or snapshotted: Redis keeps its data
// in memory and its files hold only its last own save, so it saves now.
// The files of the other profiles are current on their own (a paused copy
// recovers from their write-ahead logs). A save that fails fails the
// backup: the point would claim Redis files that are not current.
func SaveFiles(ctx context.Context, ex Execer, cs []engine.Container, log *slog.Logger) error {
	for _, ct := range cs {
		if profile, _ := Detect(ct.Image, ct.Labels); profile != Redis || !ct.Running() {
			continue
		}
		if ct.State != "running" {
			// Paused already (it cannot exec): its files do not change
			// under the copy, and they are what the point gets.
			log.Warn("redis not saved before the freeze: the container is not running; the point holds its last own save", "container", ct.Name, "state", ct.State)
			continue
		}
		start := time.Now()
		sctx, cancel := context.WithTimeoutCause(ctx, SaveTimeout, fmt.Errorf("redis save in %s took longer than %s", ct.Name, SaveTimeout))
		_, err := Output(sctx, ex, ct.ID, RedisSave())
		cancel()
		if err != nil {
			return fmt.Errorf("save redis in %s before the freeze: %w (set REDIS_PASSWORD or REDIS_PASSWORD_FILE in the container if it needs a password, or label it %s=none to copy its files as they are)", ct.Name, err, LabelDump)
		}
		log.Info("redis saved before the freeze", "container", ct.Name, "duration_ms", time.Since(start).Milliseconds())
	}
	return nil
}
