package train

import "math"

// Schedule is the learning-rate schedule of the recipe: WarmupEpochs epochs at the constant
// WarmupLR, then cosine annealing from each group's base rate over Epochs epochs (as Dassl's
// ConstantWarmupScheduler around CosineAnnealingLR(T_max=Epochs) steps it: the first epoch after
// the warm-up runs at the base rate). The rate is constant within an epoch.
type Schedule struct {
	Epochs       int
	WarmupEpochs int
	WarmupLR     float64
}

// At returns the learning rate of epoch (0-based) for a group whose base rate is base.
func (s Schedule) At(epoch int, base float64) float64 {
	if epoch < s.WarmupEpochs {
		return s.WarmupLR
	}
	e := float64(epoch - s.WarmupEpochs)
	return base * 0.5 * (1 + math.Cos(math.Pi*e/float64(max(s.Epochs, 1))))
}
