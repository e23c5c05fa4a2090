"""autograd's example programs, condensed, with ``import revad.numpy as np`` (issue 16).

Each program is written the way autograd users write it (autograd's import paths with
``revad`` for ``autograd``, its API names: ``grad``, ``value_and_grad``, ``elementwise_grad``,
``primitive``/``defvjp``, ``make_vjp``) after one of the programs in autograd's ``examples/``
directory, at sizes that run in a fraction of a second. Each one checks revad's gradient
against central finite differences of the same function evaluated on plain NumPy values, and
its value against a plain NumPy/SciPy reference written apart from it.

A program that stops today is marked ``xfail(strict=True)`` with the family that stops it, so
that it turns into a failure (XPASS) once that family lands: the mark is then to be removed.
``python tests/test_autograd_programs.py`` prints, per program, "runs" or its first stop.
"""
import functools
import itertools
import sys

import numpy as onp
import pytest

# ---------------------------------------------------------------------------------------------
# Checking: structures of arrays flattened, central differences on plain values.


def _leaves(x):
    """The float leaves of a structure (dicts by sorted key, lists, tuples), flattened."""
    if isinstance(x, dict):
        return [leaf for k in sorted(x) for leaf in _leaves(x[k])]
    if isinstance(x, (list, tuple)):
        return [leaf for e in x for leaf in _leaves(e)]
    return [onp.asarray(x, dtype=float).ravel()]


def _flat(x):
    return onp.concatenate(_leaves(x))


def _unflat(template, vec):
    """A structure like template with its leaves' values taken in order from vec."""
    pos = [0]

    def build(t):
        if isinstance(t, dict):
            return {k: build(t[k]) for k in sorted(t)}
        if isinstance(t, (list, tuple)):
            return type(t)(build(e) for e in t)
        n = onp.size(t)
        part = vec[pos[0]:pos[0] + n]
        pos[0] += n
        if isinstance(t, onp.ndarray):
            return part.reshape(onp.shape(t)).copy()
        return float(part[0])

    return build(template)


def _fd(f, x, rel_step=1e-6):
    """Central differences of f (a scalar function of the structure x) at x, flattened."""
    v = _flat(x)
    g = onp.zeros(v.size)
    for i in range(v.size):
        h = rel_step * max(1.0, abs(v[i]))
        up, down = v.copy(), v.copy()
        up[i] += h
        down[i] -= h
        g[i] = (float(f(_unflat(x, up))) - float(f(_unflat(x, down)))) / (2 * h)
    return g


def _check(f, x, g, value=None, ref=None, rtol=2e-5):
    """revad's gradient g of f at x against central differences of f on plain values; revad's
    value (if given) against f on plain values; f's plain value against ref (if given)."""
    plain = float(f(x))
    if value is not None:
        assert onp.isclose(float(value), plain, rtol=1e-10, atol=1e-12), (value, plain)
    if ref is not None:
        assert onp.isclose(plain, float(ref), rtol=1e-9, atol=1e-12), (plain, ref)
    got, want = _flat(g), _fd(f, x)
    assert got.shape == want.shape, (got.shape, want.shape)
    assert onp.all(onp.isfinite(got))
    scale = max(1.0, onp.abs(want).max())
    assert onp.allclose(got, want, rtol=rtol, atol=rtol * scale), onp.abs(got - want).max()


# ---------------------------------------------------------------------------------------------
# The programs. Each imports what it uses, as a script would at its top, so that a missing
# import path stops that program alone.


def logistic_regression():
    """examples/logistic_regression.py: tanh sigmoid, boolean targets, grad of the loss."""
    import revad.numpy as np
    from revad import grad

    def sigmoid(x):
        return 0.5 * (np.tanh(x / 2.0) + 1)

    def training_loss(weights):
        preds = sigmoid(np.dot(inputs, weights))
        label_probabilities = preds * targets + (1 - preds) * (1 - targets)
        return -np.sum(np.log(label_probabilities))

    inputs = np.array([[0.52, 1.12, 0.77], [0.88, -1.08, 0.15],
                       [0.52, 0.06, -1.30], [0.74, -2.49, 1.39]])
    targets = np.array([True, True, False, True])
    weights = np.array([0.1, -0.2, 0.3])
    g = grad(training_loss)(weights)
    p = 1 / (1 + onp.exp(-inputs @ weights))
    _check(training_loss, weights, g, ref=-onp.log(onp.where(targets, p, 1 - p)).sum())


def rosenbrock():
    """examples/rosenbrock.py: value_and_grad of a function of a 2-vector, indexed."""
    import revad.numpy as np
    from revad import value_and_grad

    def rosen(x):
        return 100 * (x[1] - x[0] ** 2) ** 2 + (1 - x[0]) ** 2

    x = np.array([-1.2, 1.0])
    v, g = value_and_grad(rosen)(x)
    assert onp.allclose(g, [-215.6, -88.0])
    _check(rosen, x, g, value=v, ref=24.2)


def neural_net():
    """examples/neural_net.py: tanh MLP as a list of (W, b), logsumexp-normalised outputs."""
    import revad.numpy as np
    import revad.numpy.random as npr
    from revad import grad
    from revad.misc.flatten import flatten
    from revad.scipy.special import logsumexp

    def init_random_params(scale, layer_sizes, rs):
        return [(scale * rs.randn(m, n), scale * rs.randn(n))
                for m, n in zip(layer_sizes[:-1], layer_sizes[1:], strict=True)]

    def neural_net_predict(params, inputs):
        for W, b in params:
            outputs = np.dot(inputs, W) + b
            inputs = np.tanh(outputs)
        return outputs - logsumexp(outputs, axis=1, keepdims=True)

    def l2_norm(params):
        flattened, _ = flatten(params)
        return np.dot(flattened, flattened)

    def log_posterior(params, inputs, targets, L2_reg):
        log_prior = -L2_reg * l2_norm(params)
        return log_prior + np.sum(neural_net_predict(params, inputs) * targets)

    rs = npr.RandomState(1)
    inputs, labels = rs.randn(6, 4), rs.randint(0, 3, size=6)
    targets = np.eye(3)[labels]
    params = init_random_params(0.5, [4, 5, 3], npr.RandomState(0))
    objective = lambda params: -log_posterior(params, inputs, targets, 0.1)  # noqa: E731
    g = grad(objective)(params)

    h = inputs
    for W, b in params:
        out = h @ W + b
        h = onp.tanh(out)
    out = out - out.max(1, keepdims=True)
    logp = out - onp.log(onp.exp(out).sum(1, keepdims=True))
    ref = (0.1 * sum((W ** 2).sum() + (b ** 2).sum() for W, b in params)
           - logp[range(6), labels].sum())
    _check(objective, params, g, ref=ref)


def neural_net_regression():
    """examples/neural_net_regression.py: relu by np.maximum, Gaussian likelihood by norm."""
    import revad.numpy as np
    import revad.numpy.random as npr
    import revad.scipy.stats.norm as norm
    from revad import grad

    def nn_predict(params, inputs, nonlinearity=lambda x: np.maximum(0.0, x)):
        for W, b in params:
            outputs = np.dot(inputs, W) + b
            inputs = nonlinearity(outputs)
        return outputs

    def log_posterior(params, inputs, targets, noise_scale=0.3):
        log_prior = -0.5 * sum(np.sum(W ** 2) + np.sum(b ** 2) for W, b in params)
        preds = nn_predict(params, inputs)
        return log_prior + np.sum(norm.logpdf(preds, targets, noise_scale))

    rs = npr.RandomState(2)
    inputs = np.linspace(-2, 2, 7).reshape((7, 1))
    targets = np.cos(inputs) + 0.1 * rs.randn(7, 1)
    params = [(rs.randn(1, 6), rs.randn(6)), (rs.randn(6, 1), rs.randn(1))]
    objective = lambda params: -log_posterior(params, inputs, targets)  # noqa: E731
    g = grad(objective)(params)

    import scipy.stats
    (W1, b1), (W2, b2) = params
    preds = onp.maximum(0, inputs @ W1 + b1) @ W2 + b2
    ref = (0.5 * sum((W ** 2).sum() + (b ** 2).sum() for W, b in params)
           - scipy.stats.norm.logpdf(preds, targets, 0.3).sum())
    _check(objective, params, g, ref=ref)


def convnet():
    """examples/convnet.py, the convolution by slices and einsum: conv, max-pool by reshape and
    np.max, a tanh layer, softmax by its own logsumexp; one flat weight vector sliced by a
    parser into shaped weights."""
    import revad.numpy as np
    import revad.numpy.random as npr
    from revad import grad

    class WeightsParser:
        def __init__(self):
            self.idxs_and_shapes, self.N = {}, 0

        def add_weights(self, name, shape):
            start = self.N
            self.N += int(np.prod(shape))
            self.idxs_and_shapes[name] = (slice(start, self.N), shape)

        def get(self, vect, name):
            idxs, shape = self.idxs_and_shapes[name]
            return np.reshape(vect[idxs], shape)

    def logsumexp(X, axis, keepdims=False):
        max_X = np.max(X)
        return max_X + np.log(np.sum(np.exp(X - max_X), axis=axis, keepdims=keepdims))

    def conv_valid(inputs, filters):
        # inputs [data, color_in, y, x], filters [color_in, color_out, ky, kx]
        ky, kx = filters.shape[2:]
        ny, nx = inputs.shape[2] - ky + 1, inputs.shape[3] - kx + 1
        patches = np.stack([inputs[:, :, i:i + ny, j:j + nx]
                            for i in range(ky) for j in range(kx)], axis=2)
        flipped = filters[:, :, ::-1, ::-1].reshape(filters.shape[:2] + (ky * kx,))
        return np.einsum("dcpyx,cop->doyx", patches, flipped)

    parser = WeightsParser()
    parser.add_weights("conv", (1, 2, 3, 3))
    parser.add_weights("conv b", (1, 2, 1, 1))
    parser.add_weights("full", (2 * 2 * 2, 3))
    parser.add_weights("full b", (3,))

    def predictions(W, inputs):
        conv = conv_valid(inputs, parser.get(W, "conv")) + parser.get(W, "conv b")
        pooled = np.max(np.max(conv.reshape((inputs.shape[0], 2, 2, 2, 2, 2)), axis=3), axis=4)
        hidden = np.tanh(pooled.reshape((inputs.shape[0], 8)))
        out = np.dot(hidden, parser.get(W, "full")) + parser.get(W, "full b")
        return out - logsumexp(out, axis=1, keepdims=True)

    rs = npr.RandomState(3)
    images = rs.randn(3, 1, 6, 6)
    labels = np.array(np.array([0, 2, 1])[:, None] == np.arange(3)[None, :], dtype=int)

    def loss(W):
        return 0.01 * np.dot(W, W) - np.sum(predictions(W, images) * labels)

    W = 0.5 * rs.randn(parser.N)
    g = grad(loss)(W)

    import scipy.signal
    import scipy.special
    k = W[:18].reshape(2, 3, 3)
    conv = onp.stack([scipy.signal.convolve(images[:, 0], k[o][None], mode="valid")
                      for o in range(2)], axis=1) + W[18:20].reshape(1, 2, 1, 1)
    hidden = onp.tanh(conv.reshape(3, 2, 2, 2, 2, 2).max(axis=(3, 5)).reshape(3, 8))
    out = hidden @ W[20:44].reshape(8, 3) + W[44:]
    logp = out - scipy.special.logsumexp(out, axis=1, keepdims=True)
    _check(loss, W, g, ref=0.01 * W @ W - (logp * labels).sum())


def convnet_scipy_signal():
    """examples/convnet.py's convolution by scipy.signal.convolve (2-d, 'valid')."""
    import revad.numpy as np
    import revad.numpy.random as npr
    import revad.scipy.signal
    from revad import grad

    convolve = revad.scipy.signal.convolve

    def loss(params, image):
        feature = np.tanh(convolve(image, params["kernel"], mode="valid") + params["bias"])
        return np.sum(feature ** 2)

    rs = npr.RandomState(4)
    image = rs.randn(6, 5)
    params = {"kernel": rs.randn(3, 2), "bias": 0.1}
    g = grad(loss)(params, image)

    import scipy.signal
    ref = (onp.tanh(scipy.signal.convolve(image, params["kernel"], mode="valid") + 0.1) ** 2).sum()
    _check(lambda p: loss(p, image), params, g, ref=ref)


def rnn():
    """examples/rnn.py: one-hot strings, hstack with a column of ones, tanh recurrence over the
    time steps, logsumexp-normalised outputs, a dict of parameters."""
    import revad.numpy as np
    import revad.numpy.random as npr
    from revad import grad
    from revad.scipy.special import logsumexp

    def string_to_one_hot(string, maxchar):
        ascii = np.array([ord(c) for c in string]).T
        return np.array(ascii[:, None] == np.arange(maxchar)[None, :], dtype=int)

    def concat_and_multiply(weights, *args):
        cat_state = np.hstack(args + (np.ones((args[0].shape[0], 1)),))
        return np.dot(cat_state, weights)

    def rnn_predict(params, inputs):
        def hiddens_to_output_probs(hiddens):
            output = concat_and_multiply(params["predict"], hiddens)
            return output - logsumexp(output, axis=1, keepdims=True)

        hiddens = np.repeat(params["init hiddens"], inputs.shape[1], axis=0)
        output = [hiddens_to_output_probs(hiddens)]
        for input in inputs:
            hiddens = np.tanh(concat_and_multiply(params["change"], input, hiddens))
            output.append(hiddens_to_output_probs(hiddens))
        return output

    def rnn_log_likelihood(params, inputs, targets):
        logprobs = rnn_predict(params, inputs)
        num_time_steps, num_examples, _ = inputs.shape
        loglik = 0.0
        for t in range(num_time_steps):
            loglik += np.sum(logprobs[t] * targets[t])
        return loglik / (num_time_steps * num_examples)

    chars, state = 4, 3
    seqs = np.zeros((5, 2, chars))
    for ix, line in enumerate(["\x00\x01\x02\x03\x01", "\x03\x03\x00\x02\x01"]):
        seqs[:, ix, :] = string_to_one_hot(line, chars)
    rs = npr.RandomState(5)
    params = {"init hiddens": rs.randn(1, state) * 0.5,
              "change": rs.randn(chars + state + 1, state) * 0.5,
              "predict": rs.randn(state + 1, chars) * 0.5}
    loss = lambda params: -rnn_log_likelihood(params, seqs, seqs)  # noqa: E731
    g = grad(loss)(params)

    import scipy.special
    h, total = onp.repeat(params["init hiddens"], 2, axis=0), 0.0
    for t in range(5):
        out = onp.hstack([h, onp.ones((2, 1))]) @ params["predict"]
        total += ((out - scipy.special.logsumexp(out, axis=1, keepdims=True)) * seqs[t]).sum()
        h = onp.tanh(onp.hstack([seqs[t], h, onp.ones((2, 1))]) @ params["change"])
    _check(loss, params, g, ref=-total / 10)


def lstm():
    """examples/lstm.py: gates by a tanh sigmoid over concatenations, cells and hiddens."""
    import revad.numpy as np
    import revad.numpy.random as npr
    from revad import grad

    def sigmoid(x):
        return 0.5 * (np.tanh(x) + 1.0)

    def concat_and_multiply(weights, *args):
        cat_state = np.concatenate(args + (np.ones((args[0].shape[0], 1)),), axis=1)
        return np.dot(cat_state, weights)

    def lstm_final_hiddens(params, inputs):
        hiddens = np.repeat(params["init hiddens"], inputs.shape[1], axis=0)
        cells = np.repeat(params["init cells"], inputs.shape[1], axis=0)
        for input in inputs:
            change = np.tanh(concat_and_multiply(params["change"], input, hiddens))
            forget = sigmoid(concat_and_multiply(params["forget"], input, hiddens))
            ingate = sigmoid(concat_and_multiply(params["ingate"], input, hiddens))
            outgate = sigmoid(concat_and_multiply(params["outgate"], input, hiddens))
            cells = cells * forget + ingate * change
            hiddens = outgate * np.tanh(cells)
        return hiddens

    rs = npr.RandomState(6)
    n_in, n_state = 2, 3
    rp = lambda *shape: rs.randn(*shape) * 0.5  # noqa: E731
    params = {"init cells": rp(1, n_state), "init hiddens": rp(1, n_state),
              **{k: rp(n_in + n_state + 1, n_state)
                 for k in ("change", "forget", "ingate", "outgate")}}
    inputs = rs.randn(4, 2, n_in)
    loss = lambda params: np.sum(lstm_final_hiddens(params, inputs) ** 2)  # noqa: E731
    g = grad(loss)(params)

    sig = lambda x: 1 / (1 + onp.exp(-2 * x))  # noqa: E731
    h = onp.repeat(params["init hiddens"], 2, axis=0)
    c = onp.repeat(params["init cells"], 2, axis=0)
    for x in inputs:
        z = onp.hstack([x, h, onp.ones((2, 1))])
        c = (c * sig(z @ params["forget"])
             + sig(z @ params["ingate"]) * onp.tanh(z @ params["change"]))
        h = sig(z @ params["outgate"]) * onp.tanh(c)
    _check(loss, params, g, ref=(h ** 2).sum())


def _rbf_covariance(np, kernel_params, x, xp):
    output_scale = np.exp(kernel_params[0])
    lengthscales = np.exp(kernel_params[1:])
    diffs = np.expand_dims(x / lengthscales, 1) - np.expand_dims(xp / lengthscales, 0)
    return output_scale * np.exp(-0.5 * np.sum(diffs ** 2, axis=2))


def _gp_data():
    rs = onp.random.RandomState(0)
    inputs = onp.concatenate([onp.linspace(0, 3, num=4), onp.linspace(6, 8, num=4)])
    targets = (onp.cos(inputs) + rs.randn(8) * 0.1) / 2.0
    return ((inputs - 4.0) / 2.0).reshape((8, 1)), targets


def _gp_reference(params, x, y):
    import scipy.stats
    cov = _rbf_covariance(onp, params[2:], x, x) + (onp.exp(params[1]) + 0.0001) * onp.eye(8)
    return scipy.stats.multivariate_normal.logpdf(y, params[0] * onp.ones(8), cov)


def gaussian_process():
    """examples/gaussian_process.py: RBF kernel (expand_dims, exp), a scalar parameter's exp
    times np.eye, multivariate_normal.logpdf; value_and_grad as scipy.optimize takes it."""
    import revad.numpy as np
    import revad.scipy.stats.multivariate_normal as mvn
    from revad import value_and_grad

    def log_marginal_likelihood(params, x, y):
        mean, cov_params, noise_scale = params[0], params[2:], np.exp(params[1]) + 0.0001
        cov_y_y = _rbf_covariance(np, cov_params, x, x) + noise_scale * np.eye(len(y))
        return mvn.logpdf(y, mean * np.ones(len(y)), cov_y_y)

    X, y = _gp_data()
    objective = lambda params: -log_marginal_likelihood(params, X, y)  # noqa: E731
    params = np.array([0.1, -1.0, 0.2, -0.3])
    v, g = value_and_grad(objective)(params)
    _check(objective, params, g, value=v, ref=-_gp_reference(params, X, y))


def gaussian_process_linalg():
    """The same GP's log marginal likelihood by np.linalg: cholesky, solve, slogdet, and the
    predictive mean by solve, as gaussian_process.py's predict."""
    import revad.numpy as np
    from revad import grad
    from revad.numpy.linalg import solve

    def objective(params, x, y):
        cov = _rbf_covariance(np, params[2:], x, x) + (np.exp(params[1]) + 0.0001) * np.eye(8)
        L = np.linalg.cholesky(cov)
        r = y - params[0]
        alpha = solve(L.T, solve(L, r))
        sign, logdet = np.linalg.slogdet(cov)
        lml = -0.5 * np.dot(r, alpha) - np.sum(np.log(np.diag(L))) - 4 * np.log(2 * np.pi)
        xstar = np.array([[0.3], [-0.6]])
        pred_mean = params[0] + np.dot(solve(cov, _rbf_covariance(np, params[2:], x, xstar)).T, r)
        return -lml + 0.5 * (logdet - 2 * np.sum(np.log(np.diag(L)))) + np.sum(pred_mean ** 2)

    X, y = _gp_data()
    params = np.array([0.1, -1.0, 0.2, -0.3])
    g = grad(objective)(params, X, y)
    cov = _rbf_covariance(onp, params[2:], X, X) + (onp.exp(params[1]) + 0.0001) * onp.eye(8)
    pm = params[0] + onp.linalg.solve(cov, _rbf_covariance(
        onp, params[2:], X, onp.array([[0.3], [-0.6]]))).T @ (y - params[0])
    _check(lambda p: objective(p, X, y), params, g,
           ref=-_gp_reference(params, X, y) + (pm ** 2).sum())


def variational_autoencoder():
    """examples/variational_autoencoder.py: batch-normalised relu nets, the reparameterisation
    trick, norm.logpdf, expit, Bernoulli log-density by np.logaddexp; grad of a (gen, rec)
    tuple of lists of (W, b)."""
    import revad.numpy as np
    import revad.numpy.random as npr
    import revad.scipy.stats.norm as norm
    from revad import grad
    from revad.scipy.special import expit as sigmoid

    def diag_gaussian_log_density(x, mu, log_std):
        return np.sum(norm.logpdf(x, mu, np.exp(log_std)), axis=-1)

    def batch_normalize(activations):
        mbmean = np.mean(activations, axis=0, keepdims=True)
        return (activations - mbmean) / (np.std(activations, axis=0, keepdims=True) + 1)

    def neural_net_predict(params, inputs):
        for W, b in params[:-1]:
            inputs = np.maximum(0, batch_normalize(np.dot(inputs, W) + b))
        outW, outb = params[-1]
        return np.dot(inputs, outW) + outb

    def vae_lower_bound(gen_params, rec_params, data, rs):
        out = neural_net_predict(rec_params, data)
        D = np.shape(out)[-1] // 2
        q_means, q_log_stds = out[:, :D], out[:, D:]
        latents = rs.randn(*q_means.shape) * np.exp(q_log_stds) + q_means
        q_latents = diag_gaussian_log_density(latents, q_means, q_log_stds)
        p_latents = diag_gaussian_log_density(latents, 0, 0)
        preds = neural_net_predict(gen_params, latents)
        likelihood = np.sum(-np.logaddexp(0, -preds * data), axis=-1)
        # sigmoid(preds) is what generate_from_prior shows; a small penalty keeps it in use
        return np.mean(p_latents + likelihood - q_latents) - 0.01 * np.sum(sigmoid(preds))

    rs = npr.RandomState(7)
    init = lambda sizes: [(0.3 * rs.randn(m, n), 0.3 * rs.randn(n))  # noqa: E731
                          for m, n in zip(sizes[:-1], sizes[1:], strict=True)]
    combined = (init([2, 4, 5]), init([5, 4, 4]))
    data = np.where(rs.rand(6, 5) > 0.5, 1.0, -1.0)

    def objective(combined_params):
        gen_params, rec_params = combined_params
        return -vae_lower_bound(gen_params, rec_params, data, npr.RandomState(0)) / 5

    g = grad(objective)(combined)
    _check(objective, combined, g)


def _bbsvi(np, npr, logprob, D, num_samples):
    """black_box_svi.py's black_box_variational_inference: a diagonal Gaussian's entropy plus
    the mean log-density of reparameterised samples (the same noise on every call)."""
    def unpack_params(params):
        return params[:D], params[D:]

    def variational_objective(params, t):
        mean, log_std = unpack_params(params)
        samples = npr.RandomState(0).randn(num_samples, D) * np.exp(log_std) + mean
        entropy = 0.5 * D * (1.0 + np.log(2 * np.pi)) + np.sum(log_std)
        return -(entropy + np.mean(logprob(samples, t)))

    return variational_objective, unpack_params


def black_box_svi():
    """examples/black_box_svi.py: a 2-d posterior by norm.logpdf with a sampled scale."""
    import revad.numpy as np
    import revad.numpy.random as npr
    import revad.scipy.stats.norm as norm
    from revad import grad

    def log_posterior(x, t):
        mu, log_sigma = x[:, 0], x[:, 1]
        return norm.logpdf(log_sigma, 0, 1.35) + norm.logpdf(mu, 0, np.exp(log_sigma))

    objective, _ = _bbsvi(np, npr, log_posterior, 2, 20)
    params = np.concatenate([-1 * np.ones(2), -0.5 * np.ones(2)])
    g = grad(objective)(params, 0)

    import scipy.stats
    s = onp.random.RandomState(0).randn(20, 2) * onp.exp(params[2:]) + params[:2]
    lp = (scipy.stats.norm.logpdf(s[:, 1], 0, 1.35)
          + scipy.stats.norm.logpdf(s[:, 0], 0, onp.exp(s[:, 1])))
    ref = -(1.0 + onp.log(2 * onp.pi) + params[2:].sum() + lp.mean())
    _check(lambda p: objective(p, 0), params, g, ref=ref)


def natural_gradient_svi():
    """examples/natural_gradient_black_box_svi.py: the same objective on a 2*3-d posterior,
    the gradient preconditioned by the inverse of a diagonal Fisher (concatenate of exp and
    ones); `np.random.randn(...).dot(...)` data."""
    import revad.numpy as np
    import revad.numpy.random as npr
    import revad.scipy.stats as stats
    from revad import grad

    np.random.seed(42)
    obs_dim = 3
    Y = np.random.randn(obs_dim, obs_dim).dot(np.random.randn(obs_dim))

    def log_density(x, t):
        mu, log_sigma = x[:, :obs_dim], x[:, obs_dim:]
        sigma_density = np.sum(stats.norm.logpdf(log_sigma, 0, 1.35), axis=1)
        mu_density = np.sum(stats.norm.logpdf(Y, mu, np.exp(log_sigma)), axis=1)
        return sigma_density + mu_density

    D = 2 * obs_dim
    objective, unpack_params = _bbsvi(np, npr, log_density, D, 10)
    gradient = grad(objective)

    def fisher_diag(lam):
        mu, log_sigma = unpack_params(lam)
        return np.concatenate([np.exp(-2.0 * log_sigma), np.ones(len(log_sigma)) * 2])

    lam = np.concatenate([-1 * np.ones(D), -1 * np.ones(D)])
    natural = (1.0 / fisher_diag(lam)) * gradient(lam, 0)
    g = natural * fisher_diag(lam)
    assert isinstance(natural, onp.ndarray) and natural.shape == (2 * D,)
    _check(lambda p: objective(p, 0), lam, g)


def bayesian_neural_net():
    """examples/bayesian_neural_net.py: weight samples by rows, unpacked by slicing and
    reshape, einsum 'mnd,mdo->mno', norm.pdf as the nonlinearity, inside BBSVI."""
    import revad.numpy as np
    import revad.numpy.random as npr
    import revad.scipy.stats.norm as norm
    from revad import grad

    layer_sizes = [1, 4, 1]
    shapes = list(zip(layer_sizes[:-1], layer_sizes[1:], strict=True))
    num_weights = sum((m + 1) * n for m, n in shapes)

    def unpack_layers(weights):
        num_weight_sets = len(weights)
        for m, n in shapes:
            yield (weights[:, :m * n].reshape((num_weight_sets, m, n)),
                   weights[:, m * n:m * n + n].reshape((num_weight_sets, 1, n)))
            weights = weights[:, (m + 1) * n:]

    def predictions(weights, inputs):
        inputs = np.expand_dims(inputs, 0)
        for W, b in unpack_layers(weights):
            outputs = np.einsum("mnd,mdo->mno", inputs, W) + b
            inputs = norm.pdf(outputs, 0, 1)
        return outputs

    inputs = np.linspace(-1, 1, 5).reshape((5, 1))
    targets = np.cos(3 * inputs)

    def logprob(weights, t):
        log_prior = -0.01 * np.sum(weights ** 2, axis=1)
        preds = predictions(weights, inputs)
        return log_prior - np.sum((preds - targets) ** 2, axis=1)[:, 0] / 0.1

    objective, _ = _bbsvi(np, npr, logprob, num_weights, 3)
    rs = npr.RandomState(8)
    params = np.concatenate([rs.randn(num_weights), -2 * np.ones(num_weights)])
    g = grad(objective)(params, 0)
    _check(lambda p: objective(p, 0), params, g)


def gaussian_mixture():
    """examples/gmm.py: a dict of parameters, zip over the rows of the parameter arrays,
    multivariate_normal.logpdf per component, logsumexp over the vstack of components."""
    import revad.numpy as np
    import revad.numpy.random as npr
    import revad.scipy.stats.multivariate_normal as mvn
    from revad import grad
    from revad.scipy.special import logsumexp

    def unpack_gmm_params(params):
        log_proportions = params["log proportions"]
        return (log_proportions - logsumexp(log_proportions), params["means"],
                params["lower triangles"])

    def gmm_log_likelihood(params, data):
        cluster_lls = []
        for log_proportion, mean, cov_sqrt in zip(*unpack_gmm_params(params), strict=True):
            cov = np.dot(cov_sqrt.T, cov_sqrt)
            cluster_lls.append(log_proportion + mvn.logpdf(data, mean, cov))
        return np.sum(logsumexp(np.vstack(cluster_lls), axis=0))

    rs = npr.RandomState(9)
    params = {"log proportions": rs.randn(3) * 0.5, "means": rs.randn(3, 2),
              "lower triangles": np.zeros((3, 2, 2)) + np.eye(2) + 0.1 * rs.randn(3, 2, 2)}
    data = rs.randn(7, 2)
    objective = lambda params: -gmm_log_likelihood(params, data)  # noqa: E731
    g = grad(objective)(params)

    import scipy.special
    import scipy.stats
    lp = params["log proportions"] - scipy.special.logsumexp(params["log proportions"])
    lls = [lp[k] + scipy.stats.multivariate_normal.logpdf(
        data, params["means"][k], params["lower triangles"][k].T @ params["lower triangles"][k])
        for k in range(3)]
    _check(objective, params, g, ref=-scipy.special.logsumexp(onp.vstack(lls), axis=0).sum())


def mixture_variational_inference():
    """examples/mixture_variational_inference.py: a mixture of diagonal Gaussians as the
    variational family: reshape(-1), vstack(...).T, logsumexp(axis=1), np.stack, logaddexp."""
    import revad.numpy as np
    import revad.numpy.random as npr
    import revad.scipy.stats.norm as norm
    from revad import grad
    from revad.scipy.special import logsumexp

    k, D, num_samples = 3, 2, 5

    def diag_gaussian_log_density(x, mu, log_std):
        return np.sum(norm.logpdf(x, mu, np.exp(log_std)), axis=-1)

    def sample_diag_gaussian(params, rs):
        mean, log_std = params[:D], params[D:]
        return rs.randn(num_samples, D) * np.exp(log_std) + mean

    def unpack_mixture_params(mixture_params):
        log_weights = mixture_params[:k] - logsumexp(mixture_params[:k])
        return log_weights, np.reshape(mixture_params[k:], (k, -1))

    def mixture_log_density(var_mixture_params, x):
        log_weights, var_params = unpack_mixture_params(var_mixture_params)
        component_log_densities = np.vstack(
            [diag_gaussian_log_density(x, p[:D], p[D:]) for p in var_params]).T
        return logsumexp(component_log_densities + log_weights, axis=1, keepdims=False)

    def log_density(x, t):
        mu, log_sigma = x[:, 0], x[:, 1]
        sigma = np.exp(log_sigma)
        return np.logaddexp(norm.logpdf(log_sigma, 0, 1.35) + norm.logpdf(mu, -0.5, sigma),
                            norm.logpdf(log_sigma, 0.1, 1.35) + norm.logpdf(mu, 0.5, sigma))

    def mixture_elbo(var_mixture_params, t):
        log_weights, var_params = unpack_mixture_params(var_mixture_params)

        def lower_bound(params):
            samples = sample_diag_gaussian(params, npr.RandomState(0))
            log_qs = np.reshape(mixture_log_density(var_mixture_params, samples), (num_samples, -1))
            log_ps = np.reshape(log_density(samples, t), (num_samples, -1))
            return np.mean(log_ps - log_qs)

        component_elbos = np.stack([lower_bound(p) for p in var_params])
        return np.sum(component_elbos * np.exp(log_weights))

    rs = npr.RandomState(10)
    params = np.concatenate([np.ones(k)] + [np.concatenate([rs.randn(D) - 1, rs.randn(D) * 0.1 - 1])
                                             for _ in range(k)])
    objective = lambda params: -mixture_elbo(params, 0)  # noqa: E731
    g = grad(objective)(params)
    _check(objective, params, g)


def hidden_markov_model():
    """examples/hmm_em.py: the forward algorithm in log space over int data (a list of
    sequences, np.array of ints indexing columns); value_and_grad of the log partition function
    in a list of natural parameters gives the expected counts (the E step)."""
    import revad.numpy as np
    import revad.numpy.random as npr
    from revad import value_and_grad
    from revad.scipy.special import logsumexp

    def normalize(a):
        return a / np.where(a > 0.0, a, 1.0).sum(-1, keepdims=True)

    def log_partition_function(natural_params, data):
        if isinstance(data, list):
            return sum(map(functools.partial(log_partition_function, natural_params), data))
        log_pi, log_A, log_B = natural_params
        log_alpha = log_pi
        for y in data:
            log_alpha = logsumexp(log_alpha[:, None] + log_A, axis=0) + log_B[:, y]
        return logsumexp(log_alpha)

    rs = npr.RandomState(11)
    params = [normalize(rs.rand(3)), normalize(rs.rand(3, 3)), normalize(rs.rand(3, 4))]
    data = [np.array([0, 2, 1, 3]), np.array([3, 0, 2])]
    assert data[0].dtype.kind == "i"
    natural_params = list(map(np.log, params))
    loglike, E_stats = value_and_grad(log_partition_function)(natural_params, data)
    # expected counts: one initial state per sequence, one emission per observation
    assert onp.isclose(E_stats[0].sum(), 2) and onp.isclose(E_stats[2].sum(), 7)
    M_step = [normalize(e) for e in E_stats]
    assert all(onp.allclose(m.sum(-1), 1) for m in M_step)

    pi, A, B = params

    def brute_force(seq):  # every path of hidden states
        total = 0.0
        for path in itertools.product(range(3), repeat=len(seq)):
            p = pi @ A[:, path[0]] * B[path[0], seq[0]]
            for s0, s1, y in zip(path[:-1], path[1:], seq[1:], strict=True):
                p *= A[s0, s1] * B[s1, y]
            total += p
        return onp.log(total)

    _check(lambda nat: log_partition_function(nat, data), natural_params, E_stats,
           value=loglike, ref=sum(brute_force(s) for s in data))


def independent_component_analysis():
    """examples/ica.py: Student-t likelihood (scipy.stats.t.logpdf with loc and scale), the
    parameters one vector sliced and reshaped into weights, latents and a noise scale."""
    import revad.numpy as np
    import revad.numpy.random as npr
    import revad.scipy.stats.t as t
    from revad import value_and_grad

    obs, lat, n = 3, 2, 4
    num_weights, num_latent = obs * lat, lat * n

    def unpack_params(params):
        weights = np.reshape(params[:num_weights], (obs, lat))
        latents = np.reshape(params[num_weights:num_weights + num_latent], (lat, n))
        return weights, latents, np.exp(params[-1])

    def objective(params):
        weights, latents, noise_std = unpack_params(params)
        preds = np.dot(weights, latents).T
        return -np.sum(t.logpdf(preds, 2.4, data, noise_std)) / n

    rs = npr.RandomState(12)
    data = rs.randn(n, obs)
    params = rs.randn(num_weights + num_latent + 1)
    v, g = value_and_grad(objective)(params)

    import scipy.stats
    W, L = params[:6].reshape(3, 2), params[6:14].reshape(2, 4)
    ref = -scipy.stats.t.logpdf((W @ L).T, 2.4, data, onp.exp(params[-1])).sum() / n
    _check(objective, params, g, value=v, ref=ref)


def independent_component_analysis_slogdet():
    """Square noiseless ICA (the maximum-likelihood form): log|det W| by slogdet plus the
    t log-density of the unmixed sources."""
    import revad.numpy as np
    import revad.numpy.random as npr
    import revad.scipy.stats as stats
    from revad import grad

    def log_likelihood(W, X):
        sources = np.dot(X, W.T)
        sign, logdet = np.linalg.slogdet(W)
        return X.shape[0] * logdet + np.sum(stats.t.logpdf(sources, 3.0))

    rs = npr.RandomState(13)
    X = rs.randn(6, 3)
    W = np.eye(3) + 0.3 * rs.randn(3, 3)
    g = grad(log_likelihood)(W, X)

    import scipy.stats
    ref = 6 * onp.linalg.slogdet(W)[1] + scipy.stats.t.logpdf(X @ W.T, 3.0).sum()
    _check(lambda W: log_likelihood(W, X), W, g, ref=ref)


def fluid_simulation():
    """examples/fluidsim/fluidsim.py: advection by np.floor(...).astype(int), np.mod and fancy
    indexing, a pressure projection by np.roll, in-place -= on the velocities."""
    import revad.numpy as np
    import revad.numpy.random as npr
    from revad import value_and_grad

    def project(vx, vy):
        p = np.zeros(vx.shape)
        h = 1.0 / vx.shape[0]
        div = -0.5 * h * (np.roll(vx, -1, axis=0) - np.roll(vx, 1, axis=0)
                          + np.roll(vy, -1, axis=1) - np.roll(vy, 1, axis=1))
        for _ in range(4):
            p = (div + np.roll(p, 1, axis=0) + np.roll(p, -1, axis=0)
                 + np.roll(p, 1, axis=1) + np.roll(p, -1, axis=1)) / 4.0
        vx -= 0.5 * (np.roll(p, -1, axis=0) - np.roll(p, 1, axis=0)) / h
        vy -= 0.5 * (np.roll(p, -1, axis=1) - np.roll(p, 1, axis=1)) / h
        return vx, vy

    def advect(f, vx, vy):
        rows, cols = f.shape
        cell_ys, cell_xs = np.meshgrid(np.arange(rows), np.arange(cols))
        center_xs = (cell_xs - vx).ravel()
        center_ys = (cell_ys - vy).ravel()
        left_ix = np.floor(center_xs).astype(int)
        top_ix = np.floor(center_ys).astype(int)
        rw = center_xs - left_ix
        bw = center_ys - top_ix
        left_ix = np.mod(left_ix, rows)
        right_ix = np.mod(left_ix + 1, rows)
        top_ix = np.mod(top_ix, cols)
        bot_ix = np.mod(top_ix + 1, cols)
        flat_f = ((1 - rw) * ((1 - bw) * f[left_ix, top_ix] + bw * f[left_ix, bot_ix])
                  + rw * ((1 - bw) * f[right_ix, top_ix] + bw * f[right_ix, bot_ix]))
        return np.reshape(flat_f, (rows, cols))

    def simulate(vx, vy, smoke, num_time_steps):
        for _ in range(num_time_steps):
            vx_updated = advect(vx, vx, vy)
            vy_updated = advect(vy, vx, vy)
            vx, vy = project(vx_updated, vy_updated)
            smoke = advect(smoke, vx, vy)
        return smoke

    rs = npr.RandomState(14)
    rows = cols = 5
    init_smoke, target = rs.rand(rows, cols), rs.rand(rows, cols)

    def objective(params):
        vx = np.reshape(params[:rows * cols], (rows, cols))
        vy = np.reshape(params[rows * cols:], (rows, cols))
        return np.mean((target - simulate(vx, vy, init_smoke, 2)) ** 2)

    params = 0.4 * rs.randn(2 * rows * cols)
    v, g = value_and_grad(objective)(params)
    _check(objective, params, g, value=v)


def negative_binomial():
    """examples/negative_binomial_maxlike.py: gammaln of a scalar plus int data, grad in two
    scalar arguments, and grad of a tuple (r, p) as the example's stationarity check."""
    import revad.numpy as np
    from revad import grad
    from revad.scipy.special import gammaln

    def negbin_loglike(r, p, x):
        return gammaln(r + x) - gammaln(r) - gammaln(x + 1) + x * np.log(p) + r * np.log(1 - p)

    data = np.array([3, 7, 0, 12, 5, 4, 9, 1])
    loglike = lambda r, p: np.sum(negbin_loglike(r, p, data))  # noqa: E731
    gr, gp = grad(loglike, argnums=(0, 1))(2.5, 0.4)
    g_tuple = grad(lambda rp: np.sum(negbin_loglike(rp[0], rp[1], data)))((2.5, 0.4))
    assert onp.allclose(g_tuple, (gr, gp), rtol=1e-12)

    import scipy.stats
    ref = scipy.stats.nbinom.logpmf(data, 2.5, 0.6).sum()
    _check(lambda rp: loglike(*rp), (2.5, 0.4), (gr, gp), ref=ref)


def beta_gamma_densities():
    """A hierarchical model's log-density by scipy.stats' beta, gamma and poisson, in
    log-transformed positive parameters unpacked from one vector."""
    import revad.numpy as np
    import revad.scipy.stats as stats
    from revad import grad

    xs = np.array([0.2, 0.55, 0.9, 0.4])
    ys = np.array([1.3, 0.2, 2.5])
    counts = np.array([2, 0, 5, 3])

    def log_joint(log_params):
        a, b, k, theta = np.exp(log_params)
        return (np.sum(stats.beta.logpdf(xs, a, b)) + np.sum(stats.gamma.logpdf(ys, k, scale=theta))
                + np.sum(stats.poisson.logpmf(counts, k * theta)))

    log_params = np.log(np.array([2.0, 3.0, 1.5, 0.8]))
    g = grad(log_joint)(log_params)

    import scipy.stats
    a, b, k, theta = onp.exp(log_params)
    ref = (scipy.stats.beta.logpdf(xs, a, b).sum()
           + scipy.stats.gamma.logpdf(ys, k, scale=theta).sum()
           + scipy.stats.poisson.logpmf(counts, k * theta).sum())
    _check(log_joint, log_params, g, ref=ref)


def dirichlet_density():
    """A Dirichlet's concentration fitted to proportions: dirichlet.logpdf of each row."""
    import revad.numpy as np
    import revad.scipy.stats as stats
    from revad import grad

    ps = np.array([[0.2, 0.3, 0.5], [0.6, 0.1, 0.3], [0.25, 0.25, 0.5]])

    def log_likelihood(log_alpha):
        alpha = np.exp(log_alpha)
        return sum(stats.dirichlet.logpdf(p, alpha) for p in ps)

    log_alpha = np.array([0.1, -0.2, 0.5])
    g = grad(log_likelihood)(log_alpha)

    import scipy.stats
    ref = sum(scipy.stats.dirichlet.logpdf(p, onp.exp(log_alpha)) for p in ps)
    _check(log_likelihood, log_alpha, g, ref=ref)


def generative_adversarial_net():
    """examples/generative_adversarial_net.py: leaky relu by np.maximum, log-sigmoid by
    np.logaddexp, the generator's and discriminator's objectives in each other's parameters."""
    import revad.numpy as np
    import revad.numpy.random as npr
    from revad import grad

    def relu(x):
        return np.maximum(0, x) - 0.1 * np.maximum(0, -x)

    def net(params, inputs):
        for W, b in params[:-1]:
            inputs = relu(np.dot(inputs, W) + b)
        W, b = params[-1]
        return np.dot(inputs, W) + b

    def logsigmoid(x):
        return x - np.logaddexp(0, x)

    def gan_objective(gen_params, dsc_params, real_data, noise):
        fake_data = net(gen_params, noise)
        logprobs_fake = logsigmoid(net(dsc_params, fake_data))
        logprobs_real = logsigmoid(net(dsc_params, real_data))
        return np.mean(logprobs_real) - np.mean(logprobs_fake)

    rs = npr.RandomState(15)
    init = lambda sizes: [(0.5 * rs.randn(m, n), 0.5 * rs.randn(n))  # noqa: E731
                          for m, n in zip(sizes[:-1], sizes[1:], strict=True)]
    gen_params, dsc_params = init([2, 4, 3]), init([3, 4, 1])
    real_data, noise = rs.randn(5, 3), rs.randn(5, 2)
    g_gen = grad(gan_objective, argnums=0)(gen_params, dsc_params, real_data, noise)
    g_dsc = grad(gan_objective, argnums=1)(gen_params, dsc_params, real_data, noise)
    _check(lambda p: gan_objective(p, dsc_params, real_data, noise), gen_params, g_gen)
    _check(lambda p: gan_objective(gen_params, p, real_data, noise), dsc_params, g_dsc)


def define_gradient():
    """examples/define_gradient.py: a user primitive logsumexp with its VJP by defvjp (at
    autograd's import path, extend), used inside a larger function."""
    import revad.numpy as np
    import revad.numpy.random as npr
    from revad import grad
    from revad.extend import defvjp, primitive

    @primitive
    def logsumexp(x):
        max_x = np.max(x)
        return max_x + np.log(np.sum(np.exp(x - max_x)))

    def logsumexp_vjp(ans, x):
        x_shape = x.shape
        return lambda g: np.full(x_shape, g) * np.exp(x - np.full(x_shape, ans))

    defvjp(logsumexp, logsumexp_vjp)

    def example_func(y):
        z = y ** 2
        return np.sum(logsumexp(z))

    y = npr.RandomState(16).randn(6)
    g = grad(example_func)(y)
    import scipy.special
    _check(example_func, y, g, ref=scipy.special.logsumexp(y ** 2))


def fixed_points():
    """examples/fixed_points.py: sqrt as the fixed point of gradient-descent steps, through
    revad.misc.fixed_points.fixed_point (implicit gradient)."""
    import revad.numpy as np
    from revad import grad
    from revad.misc.fixed_points import fixed_point

    def grad_descent_sqrt_iter(a):
        return lambda x: x - 0.05 * (x ** 2 - a)

    def sqrt(a, guess=10.0):
        return fixed_point(grad_descent_sqrt_iter, a, guess, lambda x, y: np.abs(x - y), 1e-13)

    g = grad(sqrt)(2.0)
    assert onp.isclose(g, 0.5 / onp.sqrt(2.0), rtol=1e-9)
    _check(sqrt, 2.0, g, ref=onp.sqrt(2.0), rtol=1e-4)


def fixed_point_primitive():
    """The same solver written by the user as a primitive whose VJP iterates the adjoint
    equation with make_vjp (autograd's misc/fixed_points.py, condensed), on a vector a."""
    import revad.numpy as np
    from revad import defvjp, grad, make_vjp, primitive

    def iterate(step, x, distance, tol):
        x_prev, x = x, step(x)
        while distance(x, x_prev) > tol:
            x_prev, x = x, step(x)
        return x

    @primitive
    def fixed_point(f, a, x0, distance, tol):
        return iterate(f(a), x0, distance, tol)

    def fixed_point_vjp(ans, f, a, x0, distance, tol):
        vjp_x, _ = make_vjp(lambda x: f(a)(x))(ans)
        vjp_a, _ = make_vjp(lambda a: f(a)(ans))(a)
        return lambda g: vjp_a(iterate(lambda w: g + vjp_x(w), np.zeros_like(g), distance, tol))

    defvjp(fixed_point, None, fixed_point_vjp, None, None, None)

    def newton_sqrt_iter(a):
        return lambda x: 0.5 * (x + a / x)

    dist = lambda x, y: np.max(np.abs(x - y))  # noqa: E731
    loss = lambda a: np.sum(np.sin(fixed_point(newton_sqrt_iter, a, np.ones(3), dist, 1e-14)))  # noqa: E731
    a = np.array([2.0, 3.0, 0.5])
    g = grad(loss)(a)
    assert onp.allclose(g, onp.cos(onp.sqrt(a)) * 0.5 / onp.sqrt(a), rtol=1e-9)
    _check(loss, a, g, ref=onp.sin(onp.sqrt(a)).sum())


def ode():
    """examples/ode_net.py: odeint of a cubic oscillator, grad in the dynamics' matrix (args)
    and in the initial state."""
    import revad.numpy as np
    from revad import grad
    from revad.scipy.integrate import odeint

    def func(y, t0, A):
        return np.dot(y ** 3, A)

    t = np.linspace(0.0, 1.0, 6)
    y0 = np.array([1.0, 0.0])
    A = np.array([[-0.1, 2.0], [-2.0, -0.1]])
    target = np.array([0.5, -0.5])

    def loss(A, y0):
        return np.mean(np.abs(odeint(func, y0, t, args=(A,), rtol=1e-11, atol=1e-11) - target))

    gA, gy0 = grad(loss, argnums=(0, 1))(A, y0)

    import scipy.integrate
    sol = scipy.integrate.odeint(lambda y, t: (y ** 3) @ A, y0, t, rtol=1e-11, atol=1e-11)
    _check(lambda Ay: loss(*Ay), (A, y0), (gA, gy0), ref=onp.abs(sol - target).mean(), rtol=1e-4)


def tanh_elementwise():
    """examples/tanh.py, first order: elementwise_grad of np.tanh over a linspace."""
    import revad.numpy as np
    from revad import elementwise_grad as egrad

    x = np.linspace(-7, 7, 20)
    d = egrad(np.tanh)(x)
    assert onp.allclose(d, 1 - onp.tanh(x) ** 2, rtol=1e-12)
    _check(lambda x: np.sum(np.tanh(x)), x, d, ref=onp.tanh(x).sum())


def one_hot_dtype():
    """Data as autograd programs build it: np.array(..., dtype=int) one-hots, lists of ints
    that stay ints and index, np.array(x, dtype=float); a softmax classifier over them."""
    import revad.numpy as np
    from revad import grad

    labels = np.array([2, 0, 1, 1])
    assert labels.dtype.kind == "i"
    one_hot = np.array(labels[:, None] == np.arange(3)[None, :], dtype=int)
    assert one_hot.dtype.kind == "i" and one_hot.sum() == 4
    features = np.array([[1, 2], [0, 1], [3, 1], [2, 2]], dtype=float)
    assert features.dtype == onp.float64

    def loss(W):
        logits = np.dot(features, W)
        logits = logits - np.max(logits, axis=1, keepdims=True)
        logp = logits - np.log(np.sum(np.exp(logits), axis=1, keepdims=True))
        return -np.sum(logp * one_hot) - np.sum(logp[np.arange(4), labels]) / 4

    W = np.array([[0.1, -0.2, 0.3], [0.0, 0.2, -0.1]])
    g = grad(loss)(W)
    logits = features @ W
    logp = logits - onp.log(onp.exp(logits).sum(1, keepdims=True))
    _check(loss, W, g, ref=-1.25 * logp[range(4), labels].sum())


def scalar_times_ndarray():
    """np.exp(params[1]) * X: a scalar from a parameter vector times a data array (the GP's
    noise term, a scaled design matrix), np.array of a list mixing it with numbers."""
    import revad.numpy as np
    from revad import grad

    X = onp.arange(6.0).reshape(3, 2) / 4
    y = onp.array([0.5, -0.2, 1.0])

    def loss(params):
        scaled = np.exp(params[1]) * X
        pred = np.dot(scaled, np.array([params[0], 1.0])) + params[2] * np.eye(3)[0]
        return np.sum((pred - y) ** 2)

    params = np.array([0.3, -0.4, 0.2])
    g = grad(loss)(params)
    pred = onp.exp(params[1]) * X @ onp.array([params[0], 1.0]) + params[2] * onp.eye(3)[0]
    _check(loss, params, g, ref=((pred - y) ** 2).sum())


def adam_optimizer():
    """autograd.misc.optimizers.adam's loop written out: grad of a list of (W, b), flattened
    with np.concatenate of ravels, the update in plain NumPy; three steps, each gradient
    against finite differences."""
    import revad.numpy as np
    import revad.numpy.random as npr
    from revad import grad

    def flatten(params):
        return np.concatenate([np.ravel(a) for layer in params for a in layer])

    def unflatten(v, like):
        out, k = [], 0
        for W, b in like:
            out.append((v[k:k + W.size].reshape(W.shape), v[k + W.size:k + W.size + b.size]))
            k += W.size + b.size
        return out

    rs = npr.RandomState(17)
    params = [(rs.randn(2, 3), rs.randn(3)), (rs.randn(3, 1), rs.randn(1))]
    X, y = rs.randn(5, 2), rs.randn(5, 1)

    def objective(params, i):
        h = np.tanh(np.dot(X, params[0][0]) + params[0][1])
        return np.mean((np.dot(h, params[1][0]) + params[1][1] - y) ** 2)

    gradient = grad(objective)
    x, m, v = flatten(params), onp.zeros(13), onp.zeros(13)
    for i in range(3):
        current = unflatten(x, params)
        g = gradient(current, i)
        _check(lambda p: objective(p, i), current, g)
        g = flatten(g)
        m = 0.1 * g + 0.9 * m
        v = 0.001 * g ** 2 + 0.999 * v
        x = x - 0.01 * (m / (1 - 0.9 ** (i + 1))) / (onp.sqrt(v / (1 - 0.999 ** (i + 1))) + 1e-8)
    assert objective(unflatten(x, params), 0) < objective(params, 0)


def scipy_minimize():
    """examples/gaussian_process.py's and gplvm.py's optimiser call:
    scipy.optimize.minimize(value_and_grad(objective), x0, jac=True), here on Rosenbrock's
    function of a vector, to its minimum."""
    import revad.numpy as np
    from revad import value_and_grad

    def objective(x):
        return np.sum(100.0 * (x[1:] - x[:-1] ** 2) ** 2 + (1 - x[:-1]) ** 2)

    from scipy.optimize import minimize
    x0 = np.array([-1.2, 1.0, 0.5])
    result = minimize(value_and_grad(objective), x0, jac=True, method="BFGS")
    assert result.success and onp.allclose(result.x, 1.0, atol=1e-4), result
    v, g = value_and_grad(objective)(x0)
    _check(objective, x0, g, value=v)


def gp_latent_variable_model():
    """examples/gplvm.py: the GP's log marginal likelihood of each data column in learned
    latent inputs (the covariance differentiable in them), norm.logpdf prior on the latents."""
    import revad.numpy as np
    import revad.numpy.random as npr
    import revad.scipy.stats.multivariate_normal as mvn
    from revad import value_and_grad
    from revad.scipy.stats import norm

    rs = npr.RandomState(18)
    data = rs.randn(5, 2)

    def log_marginal_likelihood(params, x, y):
        cov = _rbf_covariance(np, params[2:], x, x) + (np.exp(params[1]) + 0.0001) * np.eye(5)
        return mvn.logpdf(y, params[0] * np.ones(len(y)), cov)

    def objective(params):
        gp_params = np.reshape(params[:8], (2, 4))
        latents = np.reshape(params[8:], (5, 2))
        gp_likelihood = sum([log_marginal_likelihood(gp_params[i], latents, data[:, i])
                             for i in range(2)])
        return -gp_likelihood - np.sum(norm.logpdf(latents))

    params = rs.randn(18) * 0.3
    v, g = value_and_grad(objective)(params)

    import scipy.stats
    gp, lat = params[:8].reshape(2, 4), params[8:].reshape(5, 2)
    ref = -sum(scipy.stats.multivariate_normal.logpdf(data[:, i], gp[i, 0] * onp.ones(5), (
        _rbf_covariance(onp, gp[i, 2:], lat, lat) + (onp.exp(gp[i, 1]) + 0.0001) * onp.eye(5)))
        for i in range(2)) - scipy.stats.norm.logpdf(lat).sum()
    _check(objective, params, g, value=v, ref=ref)


def jacobian_of_vector_function():
    """autograd.jacobian of a vector-valued function (minimize_nonlinear_constraint.py's
    constraint Jacobian), against finite differences row by row."""
    import revad
    import revad.numpy as np

    def constraint(x):
        return np.array([x[0] ** 2 - (x[1] - 1) ** 2, np.sin(x[0]) * x[1]])

    x = np.array([1.0, 2.0])
    J = revad.jacobian(constraint)(x)
    assert J.shape == (2, 2)
    for i in range(2):
        _check(lambda x: constraint(x)[i], x, J[i])


def optimizers_on_structures():
    """autograd.misc.optimizers as the examples call them: adam, sgd and rmsprop on a list of
    (W, b) with grad(objective) and a callback(params, iter, gradient)."""
    import revad.numpy as np
    import revad.numpy.random as npr
    from revad import grad
    from revad.misc.optimizers import adam, rmsprop, sgd

    rs = npr.RandomState(20)
    X, y = rs.randn(8, 2), rs.randn(8, 1)
    init_params = [(rs.randn(2, 3), rs.randn(3)), (rs.randn(3, 1), rs.randn(1))]

    def objective(params, i):
        h = np.tanh(np.dot(X, params[0][0]) + params[0][1])
        return np.mean((np.dot(h, params[1][0]) + params[1][1] - y) ** 2)

    seen = []

    def callback(params, i, gradient):
        if i == 0:
            _check(lambda p: objective(p, 0), params, gradient)
        seen.append(objective(params, i))

    for optimizer, kw in ((adam, {"step_size": 0.05}), (sgd, {"step_size": 0.3}),
                          (rmsprop, {"step_size": 0.05})):
        seen.clear()
        trained = optimizer(grad(objective), init_params, callback=callback, num_iters=30, **kw)
        assert len(seen) == 30 and isinstance(trained, list) and trained[1][0].shape == (3, 1)
        assert objective(trained, 0) < 0.8 * seen[0], (optimizer.__name__, seen[0], seen[-1])


PROGRAMS = [logistic_regression, rosenbrock, neural_net, neural_net_regression, convnet,
            convnet_scipy_signal, rnn, lstm, gaussian_process, gaussian_process_linalg,
            variational_autoencoder, black_box_svi, natural_gradient_svi, bayesian_neural_net,
            gaussian_mixture, mixture_variational_inference, hidden_markov_model,
            independent_component_analysis, independent_component_analysis_slogdet,
            fluid_simulation, negative_binomial, beta_gamma_densities, dirichlet_density,
            generative_adversarial_net, define_gradient, fixed_points, fixed_point_primitive, ode,
            tanh_elementwise, one_hot_dtype, scalar_times_ndarray, adam_optimizer, scipy_minimize,
            gp_latent_variable_model, jacobian_of_vector_function, optimizers_on_structures]


# ---------------------------------------------------------------------------------------------
# Second order (issue 17): derivatives of derivatives.


def tanh_nested():
    """examples/tanh.py: elementwise_grad nested four times."""
    import revad.numpy as np
    from revad import elementwise_grad as egrad

    x = np.linspace(-2, 2, 7)
    d2 = egrad(egrad(np.tanh))(x)
    t = onp.tanh(x)
    assert onp.allclose(d2, -2 * t * (1 - t ** 2), rtol=1e-10)
    d4 = egrad(egrad(egrad(egrad(np.tanh))))(x)
    import mpmath
    assert onp.allclose(d4, [float(mpmath.diff(mpmath.tanh, xi, 4)) for xi in x], rtol=1e-9)


def sinusoid_taylor():
    """examples/sinusoid.py: grad(grad(...)) of sin at 0 for a Taylor series."""
    import revad.numpy as np
    from revad import grad

    d = np.sin
    derivs = []
    for _ in range(4):
        d = grad(d)
        derivs.append(d(0.3))
    assert onp.allclose(derivs, [onp.cos(0.3), -onp.sin(0.3), -onp.cos(0.3), onp.sin(0.3)])


def hessian_vector_product():
    """examples/gmm.py's hessp: grad of the dot of a gradient with a vector."""
    import revad.numpy as np
    from revad import grad

    def f(x):
        return np.sum(np.sin(x) * x[::-1]) + np.sum(x ** 4)

    x, v = onp.array([0.3, -0.5, 1.2]), onp.array([1.0, 2.0, -1.0])
    hvp = grad(lambda x: np.dot(grad(f)(x), v))(x)
    gf = lambda x: _fd(f, x, 1e-4)  # noqa: E731
    want = (gf(x + 1e-4 * v) - gf(x - 1e-4 * v)) / 2e-4
    assert onp.allclose(hvp, want, rtol=1e-3, atol=1e-3)


def newton_negative_binomial():
    """examples/negative_binomial_maxlike.py's Newton step: grad(grad(f)) of a scalar."""
    import revad.numpy as np
    from revad import grad
    from revad.scipy.special import gammaln

    data = np.array([3, 7, 0, 12, 5])

    def f(r):
        return np.sum(gammaln(r + data) - gammaln(r)) + r * np.log(0.5)

    import scipy.special
    second = grad(grad(f))(2.5)
    want = (scipy.special.polygamma(1, 2.5 + data) - scipy.special.polygamma(1, 2.5)).sum()
    assert onp.isclose(second, want, rtol=1e-9)


def minimize_nonlinear_constraint():
    """examples/minimize_nonlinear_constraint.py: scipy's trust-constr with autograd's
    jacobian, hessian_vector_product and linear_combination_of_hessians."""
    from scipy import optimize

    import revad
    import revad.numpy as np

    def function(x):
        return x[0] ** 2 + x[1] ** 2

    def constraint(x):
        return np.array([x[0] ** 2 - (x[1] - 1) ** 2])

    nonlinear = optimize.NonlinearConstraint(
        constraint, 2, np.inf, revad.jacobian(constraint),
        revad.linear_combination_of_hessians(constraint))
    result = optimize.minimize(function, [1.0, 2.0], method="trust-constr",
                               jac=revad.jacobian(function),
                               hessp=revad.hessian_vector_product(function),
                               constraints=[nonlinear])
    # x0^2 = 2 + (x1 - 1)^2 on the boundary: f = 2 + (x1 - 1)^2 + x1^2, least at x1 = 1/2
    assert result.success and onp.isclose(result.fun, 2.5, rtol=1e-3), result
    assert onp.allclose(onp.abs(result.x), [1.5, 0.5], atol=2e-3), result.x


SECOND_ORDER = [tanh_nested, sinusoid_taylor, hessian_vector_product, newton_negative_binomial,
                minimize_nonlinear_constraint]


# ---------------------------------------------------------------------------------------------
# What stops each program today: the family (or function) to land before it runs. A program
# that starts running fails its strict xfail: remove its line here.

STOPS: dict[str, str] = {}
SECOND_STOPS: dict[str, str] = {}


# A refusal is a TypeError (or a missing module or name); a wrong number (AssertionError) in a
# program marked here still fails the test.
_REFUSALS = (TypeError, ImportError, AttributeError)


def _params(programs, reasons):
    return [pytest.param(p, id=p.__name__, marks=[pytest.mark.xfail(
        strict=True, raises=_REFUSALS, reason=reasons[p.__name__])] if p.__name__ in reasons
        else []) for p in programs]


@pytest.mark.parametrize("program", _params(PROGRAMS, STOPS))
def test_program(program):
    program()


@pytest.mark.parametrize("program", _params(SECOND_ORDER, SECOND_STOPS))
def test_second_order_program(program):
    program()


def test_programs_listed_once():
    names = [p.__name__ for p in PROGRAMS + SECOND_ORDER]
    assert len(names) == len(set(names)) >= 30
    assert set(STOPS) <= set(names)


def test_numpy_submodules_in_autograd_spelling():
    """`import revad.numpy.random as npr`, `from revad.numpy.linalg import solve` (in a fresh
    interpreter, where the first import decides) find revad.numpy's own submodules and leave
    revad.numpy.linalg as it was; other NumPy submodules are not imported again under
    revad's name."""
    import os
    import subprocess
    code = ("import numpy, revad.numpy as np; linalg = np.linalg\n"
            "import revad.numpy.random as npr, revad.numpy.fft as fft\n"
            "from revad.numpy.linalg import solve\n"
            "import revad.numpy.linalg as la\n"
            "assert npr is numpy.random and fft is numpy.fft, (npr, fft)\n"
            "assert la is linalg and np.linalg is linalg, (la, np.linalg)\n"
            "assert solve is linalg.solve\n"
            "try:\n    import revad.numpy.ma\nexcept ModuleNotFoundError as e:\n"
            "    assert 'not a package' in str(e)\nelse:\n    raise AssertionError\n")
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    import revad
    env = dict(os.environ, PYTHONPATH=os.path.dirname(os.path.dirname(revad.__file__)))
    done = subprocess.run([sys.executable, "-c", code], cwd=root, env=env, capture_output=True,
                          text=True, timeout=120)
    assert done.returncode == 0, done.stderr


def test_first_stops_reports_runs_and_the_first_exception():
    def stops():
        raise TypeError("revad: numpy.frob is not supported\nsecond line")
    assert first_stops([logistic_regression, stops]) == {
        "logistic_regression": "runs", "stops": "TypeError: revad: numpy.frob is not supported"}


def first_stops(programs=None):
    """{program name: "runs" or its first exception, "Type: message"}; runs each program."""
    table = {}
    for program in programs or PROGRAMS + SECOND_ORDER:
        try:
            program()
            table[program.__name__] = "runs"
        except Exception as e:  # the table reports whatever stops a program
            message = str(e).splitlines()[0] if str(e) else ""
            table[program.__name__] = f"{type(e).__name__}: {message}"[:160]
    return table


if __name__ == "__main__":
    sys.path.insert(0, "")  # the revad of the directory this is run from (a worktree's root)
    stops = first_stops()
    width = max(map(len, stops))
    for name, stop in stops.items():
        print(f"{name:<{width}}  {stop}")
    print(f"{sum(s == 'runs' for s in stops.values())} of {len(stops)} run")


# ---------------------------------------------------------------------------------------------
# autograd's import paths that revad offers beside the differential operators.


def test_extend_and_misc_doctests():
    import doctest

    import revad.extend
    import revad.misc.flatten
    import revad.misc.optimizers
    for module in (revad.extend, revad.misc.flatten, revad.misc.optimizers):
        result = doctest.testmod(module)
        assert result.failed == 0 and result.attempted > 0, module.__name__


def test_flatten_round_trip_and_gradient():
    import collections

    import revad
    from revad.misc.flatten import flatten, flatten_func
    Layer = collections.namedtuple("Layer", "W b")
    rs = onp.random.RandomState(19)
    params = {"layers": [Layer(rs.randn(2, 3), rs.randn(3)), Layer(rs.randn(3, 1), 0.5)],
              "scale": (rs.randn(), rs.randn(2, 2))}
    flat, unflatten = flatten(params)
    assert flat.shape == (6 + 3 + 3 + 1 + 1 + 4,)
    back = unflatten(flat)
    assert isinstance(back["layers"][1], Layer) and back["layers"][1].b == 0.5
    onp.testing.assert_array_equal(_flat(back), _flat(params))
    # the order is autograd's: dict keys sorted, then containers in order, leaves raveled
    onp.testing.assert_array_equal(flat, _flat(params))

    def l2(p):
        v, _ = flatten(p)
        return revad.numpy.dot(v, v) + revad.numpy.sum(revad.numpy.sin(v))

    params = {"layers": [tuple(layer) for layer in params["layers"]], "scale": params["scale"]}
    g = revad.grad(l2)(params)   # (revad's and autograd's grad take plain tuples, not Layer)
    onp.testing.assert_allclose(_flat(g), 2 * flat + onp.cos(flat), rtol=1e-14)
    _check(l2, params, g)
    flat_l2, unflatten2, x0 = flatten_func(l2, params)
    onp.testing.assert_allclose(revad.grad(flat_l2)(x0), 2 * flat + onp.cos(flat), rtol=1e-14)
    with pytest.raises(ValueError, match="vector of length 18"):
        unflatten(onp.zeros(5))
    assert flatten([])[0].shape == (0,) and flatten([])[1](onp.zeros(0)) == []


def test_adam_matches_its_formulas_step_by_step():
    """adam on a dict equals Kingma and Ba's update written out on the flat vector (the
    dict's keys in sorted order), with the callback seeing dicts."""
    from revad.misc.optimizers import adam
    target = onp.array([1.0, -2.0, 0.5])

    def grad(p, i):
        return {"a": 2 * (p["a"] - target[:2]) * (i + 1), "b": 4 * (p["b"] - target[2]) ** 3}

    calls = []
    got = adam(grad, {"b": 0.0, "a": onp.zeros(2)}, callback=lambda p, i, g: calls.append(
        (sorted(p), sorted(g))), num_iters=5, step_size=0.1)
    x, m, v = onp.zeros(3), onp.zeros(3), onp.zeros(3)
    for i in range(5):
        g = onp.concatenate([2 * (x[:2] - target[:2]) * (i + 1), [4 * (x[2] - target[2]) ** 3]])
        m, v = 0.1 * g + 0.9 * m, 0.001 * g * g + 0.999 * v
        x = x - 0.1 * (m / (1 - 0.9 ** (i + 1))) / (onp.sqrt(v / (1 - 0.999 ** (i + 1))) + 1e-8)
    onp.testing.assert_allclose(got["a"], x[:2], rtol=1e-14)
    assert isinstance(got["b"], float) and abs(got["b"] - x[2]) < 1e-14
    assert calls == [(["a", "b"], ["a", "b"])] * 5
