package grad

import (
	"github.com/skipgraph/skipgraph/graph"
)

// Matrix products. For y = a @ b (numpy matmul semantics):
//
//	da = g @ b^T   summed over the batch axes a was broadcast along
//	db = a^T @ g   summed likewise
//
// where ^T swaps the last two axes; 1-D operands are promoted to matrices and back.

func init() {
	Register("MatMul", matMulGrad)
	Register("Gemm", gemmGrad)
}

// swapLast transposes the last two axes of a value of rank r >= 2.
func (c *Context) swapLast(v *graph.Value, r int) *graph.Value {
	perm := make([]int64, r)
	for i := range perm {
		perm[i] = int64(i)
	}
	perm[r-2], perm[r-1] = perm[r-1], perm[r-2]
	return c.Transpose(v, perm...)
}

func (c *Context) matMul(a, b *graph.Value) *graph.Value {
	return c.Op("MatMul", []*graph.Value{a, b})
}

func matMulGrad(c *Context) error {
	a, b, g := c.I(0), c.I(1), c.GO(0)
	ra, rb := c.Rank(a), c.Rank(b)
	switch {
	case rb == 2 && ra != 2:
		// The usual linear layer: activations of any rank times a weight matrix.
		if c.Need(0) {
			c.SetGI(0, c.matMul(g, c.Transpose(b, 1, 0)))
		}
		if c.Need(1) {
			a2 := c.Op("Flatten", []*graph.Value{a}, graph.IntAttr("axis", -1))
			g2 := c.Op("Flatten", []*graph.Value{g}, graph.IntAttr("axis", -1))
			c.SetGI(1, c.Op("Gemm", []*graph.Value{a2, g2}, graph.IntAttr("transA", 1)))
		}
		return nil
	case ra == 2 && rb < 0:
		if c.Need(1) {
			c.SetGI(1, c.matMul(c.Transpose(a, 1, 0), g))
		}
		if c.Need(0) {
			c.SetGI(0, c.ReduceTo(c.einsum("...mn,...kn->...mk", g, b), a, nil))
		}
		return nil
	case ra < 0 || rb < 0:
		// Unknown ranks (assumed >= 2): Einsum swaps the last axes without knowing the rank.
		if c.Need(0) {
			c.SetGI(0, c.ReduceTo(c.einsum("...mn,...kn->...mk", g, b), a, nil))
		}
		if c.Need(1) {
			c.SetGI(1, c.ReduceTo(c.einsum("...mk,...mn->...kn", a, g), b, nil))
		}
		return nil
	case ra == 1 && rb == 1:
		c.SetGI(0, c.Mul(g, b))
		c.SetGI(1, c.Mul(g, a))
		return nil
	case ra == 1:
		// a [K] acts as [1, K]; g [..., N] as [..., 1, N].
		a2, g2 := c.Unsqueeze(a, 0), c.Unsqueeze(g, -2)
		if c.Need(0) {
			da := c.matMul(g2, c.swapLast(b, rb))
			c.SetGI(0, c.ReshapeLike(c.ReduceTo(da, a2, nil), a))
		}
		if c.Need(1) {
			db := c.matMul(c.Transpose(a2, 1, 0), g2)
			c.SetGI(1, c.ReduceTo(db, b, nil))
		}
		return nil
	case rb == 1:
		// b [K] acts as [K, 1]; g [..., M] as [..., M, 1].
		b2, g2 := c.Unsqueeze(b, 1), c.Unsqueeze(g, -1)
		if c.Need(0) {
			da := c.matMul(g2, c.Transpose(b2, 1, 0))
			c.SetGI(0, c.ReduceTo(da, a, nil))
		}
		if c.Need(1) {
			db := c.matMul(c.swapLast(a, ra), g2)
			c.SetGI(1, c.ReshapeLike(c.ReduceTo(db, b2, nil), b))
		}
		return nil
	}
	if ra == 2 && rb == 2 {
		c.SetGI(0, c.matMul(g, c.Transpose(b, 1, 0)))
		c.SetGI(1, c.matMul(c.Transpose(a, 1, 0), g))
		return nil
	}
	if c.Need(0) {
		da := c.matMul(g, c.swapLast(b, rb))
		c.SetGI(0, c.ReduceTo(da, a, nil))
	}
	if c.Need(1) {
		db := c.matMul(c.swapLast(a, ra), g)
		c.SetGI(1, c.ReduceTo(db, b, nil))
	}
	return nil
}

func (c *Context) einsum(eq string, a, b *graph.Value) *graph.Value {
	return c.Op("Einsum", []*graph.Value{a, b}, graph.StringAttr("equation", eq))
}

// gemmGrad: y = alpha * op(A) op(B) + beta * C, op transposing when transA / transB is set.
func gemmGrad(c *Context) error {
	a, b, g := c.I(0), c.I(1), c.GO(0)
	alpha := c.Node.AttrFloat("alpha", 1)
	beta := c.Node.AttrFloat("beta", 1)
	ta, tb := c.Node.AttrInt("transA", 0), c.Node.AttrInt("transB", 0)
	gemm := func(x, y *graph.Value, tx, ty int64) *graph.Value {
		return c.Op("Gemm", []*graph.Value{x, y}, graph.FloatAttr("alpha", alpha),
			graph.IntAttr("transA", tx), graph.IntAttr("transB", ty))
	}
	if c.Need(0) {
		if ta == 0 { // dA = alpha g op(B)^T
			c.SetGI(0, gemm(g, b, 0, 1-tb))
		} else { // dA = alpha op(B) g^T
			c.SetGI(0, gemm(b, g, tb, 1))
		}
	}
	if c.Need(1) {
		if tb == 0 { // dB = alpha op(A)^T g
			c.SetGI(1, gemm(a, g, 1-ta, 0))
		} else { // dB = alpha g^T op(A)
			c.SetGI(1, gemm(g, a, 1, ta))
		}
	}
	if c.Need(2) {
		gc := g
		if beta != 1 {
			gc = c.Mul(g, c.Scalar(float64(beta), c.O(0)))
		}
		c.SetGI(2, c.ReduceTo(gc, c.I(2), c.O(0)))
	}
	return nil
}
