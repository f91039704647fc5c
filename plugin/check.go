package plugin

import "github.com/skipgraph/skipgraph/strategy"

// CheckPlan checks every name a plan refers to against the skeleton it was made from
// (strategy.CheckPlan).
func CheckPlan(skel *strategy.Skeleton, p *strategy.Plan) error { return strategy.CheckPlan(skel, p) }
