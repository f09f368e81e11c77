package publish

import (
	"context"
	"fmt"

	"github.com/chronicler-dev/chronicler/mapping"
	"github.com/chronicler-dev/chronicler/publish/kafka/registry"
)

// resolveSchemas returns the registry's ids of rs's schemas (nil without a
// registry): registered, or looked up, as registry.Client.Resolve does.
func (p *Publisher) resolveSchemas(ctx context.Context, rs *mapping.RuleSet) (registry.IDs, error) {
	return resolveSchemas(ctx, p.cfg.Registry, rs)
}

func resolveSchemas(ctx context.Context, reg *registry.Client, rs *mapping.RuleSet) (registry.IDs, error) {
	if reg == nil {
		return nil, nil
	}
	ids, err := reg.Resolve(ctx, rs)
	if err != nil {
		return nil, fmt.Errorf("the promotion rules' schemas in the schema registry: %w", err)
	}
	return ids, nil
}

// CheckSchemas registers (or looks up) the schemas of rs in the schema
// registry exactly as Run does at start, so that a rule reload whose
// schemas the registry refuses (an incompatible change) is refused before
// SwapRules: the running rules stay. The ids are cached, so the swap itself
// asks the registry nothing. Without a registry it does nothing. Safe for
// concurrent use.
func (p *Publisher) CheckSchemas(ctx context.Context, rs *mapping.RuleSet) error {
	_, err := p.resolveSchemas(ctx, rs)
	return err
}
