package grad

import (
	"math"

	"github.com/skipgraph/skipgraph/graph"
)

// Elementwise operators. Binary ones broadcast, so their input gradients are summed back to
// each input's shape (ReduceTo).

func init() {
	Register("Add", func(c *Context) error {
		g := c.GO(0)
		if c.Need(0) {
			c.SetGI(0, c.ReduceTo(g, c.I(0), c.O(0)))
		}
		if c.Need(1) {
			c.SetGI(1, c.ReduceTo(g, c.I(1), c.O(0)))
		}
		return nil
	})
	Register("Sub", func(c *Context) error {
		g := c.GO(0)
		if c.Need(0) {
			c.SetGI(0, c.ReduceTo(g, c.I(0), c.O(0)))
		}
		if c.Need(1) {
			c.SetGI(1, c.ReduceTo(c.Neg(g), c.I(1), c.O(0)))
		}
		return nil
	})
	Register("Mul", func(c *Context) error {
		g, a, b := c.GO(0), c.I(0), c.I(1)
		if c.Need(0) {
			c.SetGI(0, c.ReduceTo(c.Mul(g, b), a, c.O(0)))
		}
		if c.Need(1) {
			c.SetGI(1, c.ReduceTo(c.Mul(g, a), b, c.O(0)))
		}
		return nil
	})
	// y = a / b: da = g / b, db = -g * y / b.
	Register("Div", func(c *Context) error {
		g, a, b, y := c.GO(0), c.I(0), c.I(1), c.O(0)
		if c.Need(0) {
			c.SetGI(0, c.ReduceTo(c.Div(g, b), a, y))
		}
		if c.Need(1) {
			c.SetGI(1, c.ReduceTo(c.Neg(c.Div(c.Mul(g, y), b)), b, y))
		}
		return nil
	})
	Register("Neg", func(c *Context) error {
		c.SetGI(0, c.Neg(c.GO(0)))
		return nil
	})
	// y = x^p: dx = g * p * x^(p-1), dp = g * y * ln(x).
	Register("Pow", func(c *Context) error {
		g, x, p, y := c.GO(0), c.I(0), c.I(1), c.O(0)
		if c.Need(0) {
			px := p
			if dx, dp := c.DType(x), c.DType(p); dx != dp || dx == graph.Undefined {
				px = c.Op("CastLike", []*graph.Value{p, x})
			}
			var d *graph.Value
			if e, ok := constScalar(p); ok && e == 2 {
				d = c.Mul(x, c.Scalar(2, x))
			} else {
				d = c.Mul(px, c.Op("Pow", []*graph.Value{x, c.Sub(px, c.Scalar(1, x))}))
			}
			c.SetGI(0, c.ReduceTo(c.Mul(g, d), x, y))
		}
		if c.Need(1) {
			d := c.Mul(c.Mul(g, y), c.Op("Log", []*graph.Value{x}))
			c.SetGI(1, c.ReduceTo(c.Op("CastLike", []*graph.Value{d, p}), p, y))
		}
		return nil
	})
	// y = sqrt(x): dx = g / (2 y).
	Register("Sqrt", func(c *Context) error {
		c.SetGI(0, c.Div(c.Mul(c.GO(0), c.Scalar(0.5, c.O(0))), c.O(0)))
		return nil
	})
	Register("Exp", func(c *Context) error {
		c.SetGI(0, c.Mul(c.GO(0), c.O(0)))
		return nil
	})
	Register("Log", func(c *Context) error {
		c.SetGI(0, c.Div(c.GO(0), c.I(0)))
		return nil
	})
	// erf'(x) = 2/sqrt(pi) * exp(-x^2).
	Register("Erf", func(c *Context) error {
		x := c.I(0)
		e := c.Op("Exp", []*graph.Value{c.Neg(c.Mul(x, x))})
		c.SetGI(0, c.Mul(c.GO(0), c.Mul(e, c.Scalar(2/math.Sqrt(math.Pi), x))))
		return nil
	})
	// sigmoid' = y (1 - y).
	Register("Sigmoid", func(c *Context) error {
		y := c.O(0)
		c.SetGI(0, c.Mul(c.GO(0), c.Mul(y, c.Sub(c.Scalar(1, y), y))))
		return nil
	})
	// tanh' = 1 - y^2.
	Register("Tanh", func(c *Context) error {
		y := c.O(0)
		c.SetGI(0, c.Mul(c.GO(0), c.Sub(c.Scalar(1, y), c.Mul(y, y))))
		return nil
	})
	Register("Relu", func(c *Context) error {
		x := c.I(0)
		pos := c.Op("Greater", []*graph.Value{x, c.Scalar(0, x)})
		c.SetGI(0, c.Op("Where", []*graph.Value{pos, c.GO(0), c.Scalar(0, x)}))
		return nil
	})
	Register("Abs", func(c *Context) error {
		c.SetGI(0, c.Mul(c.GO(0), c.Op("Sign", []*graph.Value{c.I(0)})))
		return nil
	})
	// y = 1/x: dx = -g y^2.
	Register("Reciprocal", func(c *Context) error {
		y := c.O(0)
		c.SetGI(0, c.Neg(c.Mul(c.GO(0), c.Mul(y, y))))
		return nil
	})
	identity := func(c *Context) error {
		c.SetGI(0, c.GO(0))
		return nil
	}
	Register("Identity", identity)
	// Dropout differentiates as the inference-mode identity; a graph that trains with dropout
	// (training_mode true) is refused.
	Register("Dropout", func(c *Context) error {
		if tm := c.I(2); tm != nil {
			v, ok := constInts(tm)
			if !ok || len(v) != 1 || v[0] != 0 {
				return c.Errorf("only inference-mode Dropout (training_mode absent or false) is supported")
			}
		}
		return identity(c)
	})
	// Cast between floating-point types: cast the gradient back. Casts to other types are stop
	// edges (the backward pass never reaches them: their output is not floating point).
	Register("Cast", func(c *Context) error {
		dt := c.DType(c.I(0))
		if dt == graph.Undefined {
			c.SetGI(0, c.Op("CastLike", []*graph.Value{c.GO(0), c.I(0)}))
			return nil
		}
		c.SetGI(0, c.Op("Cast", []*graph.Value{c.GO(0)}, graph.IntAttr("to", int64(dt))))
		return nil
	})
	Register("CastLike", func(c *Context) error {
		c.SetGI(0, c.Op("CastLike", []*graph.Value{c.GO(0), c.I(0)}))
		return nil
	})
	// Where(cond, a, b): the gradient goes to a where cond holds, to b elsewhere.
	Register("Where", func(c *Context) error {
		g, cond, y := c.GO(0), c.I(0), c.O(0)
		zero := c.Scalar(0, y)
		if c.Need(1) {
			c.SetGI(1, c.ReduceTo(c.Op("Where", []*graph.Value{cond, g, zero}), c.I(1), y))
		}
		if c.Need(2) {
			c.SetGI(2, c.ReduceTo(c.Op("Where", []*graph.Value{cond, zero, g}), c.I(2), y))
		}
		return nil
	})
	Register("Sum", func(c *Context) error {
		for i := range c.NumI() {
			if c.Need(i) {
				c.SetGI(i, c.ReduceTo(c.GO(0), c.I(i), c.O(0)))
			}
		}
		return nil
	})
	// Max and Min: the gradient goes to every input equal to the result (ties share it whole).
	maxMin := func(c *Context) error {
		g, y := c.GO(0), c.O(0)
		zero := c.Scalar(0, y)
		for i := range c.NumI() {
			if c.Need(i) {
				hit := c.Op("Equal", []*graph.Value{c.I(i), y})
				c.SetGI(i, c.ReduceTo(c.Op("Where", []*graph.Value{hit, g, zero}), c.I(i), y))
			}
		}
		return nil
	}
	Register("Max", maxMin)
	Register("Min", maxMin)
	// Clip(x, lo, hi): the gradient passes where lo <= x <= hi.
	Register("Clip", func(c *Context) error {
		x := c.I(0)
		in := c.Op("Equal", []*graph.Value{x, c.O(0)})
		c.SetGI(0, c.Op("Where", []*graph.Value{in, c.GO(0), c.Scalar(0, x)}))
		return nil
	})
	// Comparisons, logic and integer-valued functions carry no gradient.
	RegisterNoGradient("Equal", "Less", "Greater", "LessOrEqual", "GreaterOrEqual", "Not", "And",
		"Or", "Xor", "IsNaN", "IsInf", "Sign", "Floor", "Ceil", "Round")
}

// constScalar returns the value of a one-element floating-point constant.
func constScalar(v *graph.Value) (float64, bool) {
	t := constTensor(v)
	if t == nil || t.NumElements() != 1 || !t.DType.IsFloat() {
		return 0, false
	}
	x, err := t.Float64s()
	if err != nil {
		return 0, false
	}
	return x[0], true
}
