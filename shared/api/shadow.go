package api

import (
	"context"
	"log/slog"

	"github.com/zeroae/zae-limiter-go/shared/emf"
	"github.com/zeroae/zae-limiter-go/shared/limits"
)

// metricsNamespace is the CloudWatch namespace of the embedded metrics.
const metricsNamespace = "ZaeLimiter"

// logShadow logs, at warn level, each shadow limit that would have denied
// an admitted request (ADR-031), with a CloudWatch embedded metric
// ShadowDenials (dimensions Namespace, Resource, Limit): with the Lambda's
// JSON log format, CloudWatch Logs turns the line into the metric.
func (h *Handler) logShadow(ctx context.Context, namespace, entity, resource string, shadow []limits.Status) {
	for _, s := range shadow {
		h.log.LogAttrs(ctx, slog.LevelWarn, "shadow limit would have denied",
			slog.String("entity_id", entity), slog.String("limit_entity_id", s.EntityID),
			slog.Int64("requested", s.Requested), slog.Int64("available", s.Available),
			slog.Float64("retry_after_seconds", seconds(s.RetryAfter)),
			emf.Group(metricsNamespace, map[string]string{"Namespace": namespace, "Resource": resource, "Limit": s.Limit.Name},
				h.o.Now(), emf.Count("ShadowDenials", 1)))
	}
}
