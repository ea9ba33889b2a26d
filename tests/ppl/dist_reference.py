# Reference values for the distribution tables in tests/ppl/dist_*_test.cpp:
# the textbook densities evaluated in mpmath at 50 digits (run: python3 dist_reference.py).
from mpmath import mp, mpf, log, loggamma as lgamma, gamma, pi, sqrt, besseli, cos, beta, quad, matrix, det, inverse, binomial, exp, factorial, atan
mp.dps = 50
def show(name, v): print(f"{name}: {mp.nstr(v, 17)}")
# Exponential
show("Exponential(2.5) at 0", log(mpf('2.5')))
show("Exponential(2.5) at 1.3", log(mpf('2.5')) - mpf('2.5')*mpf('1.3'))
show("Exponential(0.4) at 7", log(mpf('0.4')) - mpf('0.4')*7)
# LogNormal
def lognormal(m, s, x): return -log(x) - log(s) - log(2*pi)/2 - (log(x)-m)**2/(2*s**2)
show("LogNormal(0.3,0.8) at 1.7", lognormal(mpf('0.3'), mpf('0.8'), mpf('1.7')))
show("LogNormal(-1,2) at 0.05", lognormal(mpf(-1), mpf(2), mpf('0.05')))
# HalfNormal
def halfnormal(s, x): return log(2) - log(s) - log(2*pi)/2 - x**2/(2*s**2)
show("HalfNormal(1.5) at 0", halfnormal(mpf('1.5'), 0))
show("HalfNormal(1.5) at 2.2", halfnormal(mpf('1.5'), mpf('2.2')))
def halfcauchy(s, x): return log(2/(pi*s*(1+(x/s)**2)))
show("HalfCauchy(2) at 0", halfcauchy(mpf(2), 0))
show("HalfCauchy(2) at 3.5", halfcauchy(mpf(2), mpf('3.5')))
def cauchy(m, s, x): return -log(pi*s*(1+((x-m)/s)**2))
show("Cauchy(0.5,2) at -3", cauchy(mpf('0.5'), mpf(2), mpf(-3)))
show("Cauchy(0,1) at 0", cauchy(0, 1, 0))
def studentt(n, m, s, x):
    z = (x-m)/s
    return log(gamma((n+1)/2)/(gamma(n/2)*sqrt(n*pi)*s)) - (n+1)/2*log(1+z**2/n)
show("StudentT(3,0.5,2) at 1.7", studentt(mpf(3), mpf('0.5'), mpf(2), mpf('1.7')))
show("StudentT(0.7,0,1) at -12", studentt(mpf('0.7'), 0, 1, mpf(-12)))
show("StudentT(30,-1,0.5) at -1", studentt(mpf(30), mpf(-1), mpf('0.5'), mpf(-1)))
def invgamma(a, b, x): return a*log(b) - lgamma(a) - (a+1)*log(x) - b/x
show("InverseGamma(2.5,1.5) at 0.8", invgamma(mpf('2.5'), mpf('1.5'), mpf('0.8')))
show("InverseGamma(0.5,3) at 10", invgamma(mpf('0.5'), mpf(3), mpf(10)))
def chi2(k, x): return (k/2-1)*log(x) - x/2 - (k/2)*log(2) - lgamma(k/2)
show("Chi2(3) at 2.5", chi2(mpf(3), mpf('2.5')))
show("Chi2(1) at 0.3", chi2(mpf(1), mpf('0.3')))
def weibull(l, k, x): return log(k/l) + (k-1)*log(x/l) - (x/l)**k
show("Weibull(2,1.5) at 1.3", weibull(mpf(2), mpf('1.5'), mpf('1.3')))
show("Weibull(1,1) at 0", log(1))
show("Weibull(0.5,3) at 0.7", weibull(mpf('0.5'), mpf(3), mpf('0.7')))
def vonmises(m, k, x): return k*cos(x-m) - log(2*pi*besseli(0, k))
show("VonMises(0.5,2) at -1", vonmises(mpf('0.5'), mpf(2), mpf(-1)))
show("VonMises(0,0) at 1", vonmises(0, 0, 1))
show("VonMises(3,50) at pi", vonmises(3, 50, pi))
def poisson(r, k): return k*log(r) - r - lgamma(k+1) if k>0 else -r
show("Poisson(3.5) at 0", poisson(mpf('3.5'), 0))
show("Poisson(3.5) at 5", poisson(mpf('3.5'), 5))
show("DiscreteUniform(-2,3)", -log(6))
def binom(n, p, k): return log(binomial(n, k)) + (k*log(p) if k else 0) + ((n-k)*log(1-p) if n-k else 0)
show("Binomial(10,0.3) at 0", binom(10, mpf('0.3'), 0))
show("Binomial(10,0.3) at 10", binom(10, mpf('0.3'), 10))
show("Binomial(10,0.3) at 4", binom(10, mpf('0.3'), 4))
sig = lambda l: 1/(1+exp(-l))
show("Binomial(5,logits -1) at 2", binom(5, sig(mpf(-1)), 2))
def negbin(r, p, k): return lgamma(k+r) - lgamma(k+1) - lgamma(r) + r*log(1-p) + (k*log(p) if k else 0)
show("NegativeBinomial(3.5,0.4) at 0", negbin(mpf('3.5'), mpf('0.4'), 0))
show("NegativeBinomial(3.5,0.4) at 6", negbin(mpf('3.5'), mpf('0.4'), 6))
show("NegativeBinomial(2,logits 0.7) at 2", negbin(mpf(2), sig(mpf('0.7')), 2))
def geom(p, k): return k*log(1-p) + log(p)
show("Geometric(0.3) at 0", geom(mpf('0.3'), 0))
show("Geometric(0.3) at 4", geom(mpf('0.3'), 4))
show("Geometric(logits 1.2) at 3", geom(sig(mpf('1.2')), 3))
def multinom(n, p, x): return lgamma(n+1) - sum(lgamma(xi+1) for xi in x) + sum(xi*log(pi_) for xi, pi_ in zip(x, p) if xi)
P = [mpf('0.2'), mpf('0.5'), mpf('0.3')]
show("Multinomial(5,[.2,.5,.3]) at [1,3,1]", multinom(5, P, [1,3,1]))
show("Multinomial(5,[.2,.5,.3]) at [5,0,0]", multinom(5, P, [5,0,0]))
L = [mpf(1), mpf('-0.5'), mpf(2)]; Z = sum(exp(l) for l in L); PL = [exp(l)/Z for l in L]
show("Multinomial(4,logits [1,-.5,2]) at [0,1,3]", multinom(4, PL, [0,1,3]))
show("OneHot([.2,.5,.3]) at [0,0,1]", log(mpf('0.3')))
def concrete(T, p, y):
    K = len(p)
    return log(factorial(K-1)) + (K-1)*log(T) + sum(log(pk) - (T+1)*log(yk) for pk, yk in zip(p, y)) - K*log(sum(pk*yk**(-T) for pk, yk in zip(p, y)))
show("RelaxedOneHot(0.7,[.2,.5,.3]) at [.1,.6,.3]", concrete(mpf('0.7'), P, [mpf('0.1'), mpf('0.6'), mpf('0.3')]))
show("RelaxedOneHot(2,logits [1,-.5,2]) at [.5,.2,.3]", concrete(mpf(2), PL, [mpf('0.5'), mpf('0.2'), mpf('0.3')]))
def dirichlet(a, x): return lgamma(sum(a)) - sum(lgamma(ai) for ai in a) + sum((ai-1)*log(xi) for ai, xi in zip(a, x) if ai != 1)
show("Dirichlet([2,3.5,.7]) at [.2,.5,.3]", dirichlet([mpf(2), mpf('3.5'), mpf('0.7')], [mpf('0.2'), mpf('0.5'), mpf('0.3')]))
show("Dirichlet([1,1,1]) at [.1,.1,.8]", dirichlet([1,1,1], [mpf('0.1')]*2+[mpf('0.8')]))
show("Dirichlet([1,2,1]) at [0,.5,.5]", lgamma(4) - lgamma(2) + log(mpf('0.5')))
def mvn(mu, S, x):
    D = len(mu); S = matrix(S); d = matrix([xi - mi for xi, mi in zip(x, mu)])
    return -D/2*log(2*pi) - log(det(S))/2 - (d.T*inverse(S)*d)[0]/2
S2 = [[2, mpf('0.6')], [mpf('0.6'), 1]]
show("MVN([.3,-.1],S2) at [1,.5]", mvn([mpf('0.3'), mpf('-0.1')], S2, [1, mpf('0.5')]))
S3 = [[mpf('1.5'), mpf('0.3'), mpf('-0.2')], [mpf('0.3'), 1, mpf('0.4')], [mpf('-0.2'), mpf('0.4'), mpf('0.8')]]
show("MVN([0,1,-1],S3) at [.5,.5,.5]", mvn([0, 1, -1], S3, [mpf('0.5')]*3))
W = matrix([[1, mpf('0.5')], [mpf('0.2'), mpf('-0.3')], [mpf('0.4'), mpf('0.1')]]); dg = [mpf('0.5'), 1, mpf('0.8')]
C = W*W.T
for i in range(3): C[i,i] += dg[i]
show("LowRankMVN([.1,.2,.3],W,d) at [1,-1,.5]", mvn([mpf('0.1'), mpf('0.2'), mpf('0.3')], C.tolist(), [1, -1, mpf('0.5')]))
# LKJ: row densities on unit balls (see the derivation in multivariate.cpp)
eta = mpf(2); r = mpf('0.3')
show("LKJ(2, eta 2) at r .3", (eta-1)*log(1-r**2) - log(beta(mpf('0.5'), eta)))
show("LKJ(2, eta .5) at r -.8", (mpf('0.5')-1)*log(1-mpf('0.64')) - log(beta(mpf('0.5'), mpf('0.5'))))
eta = mpf('1.5'); a1 = (3-1-1)/mpf(2) + eta - 1; a2 = (3-2-1)/mpf(2) + eta - 1
Z1 = quad(lambda x: (1-x**2)**a1, [-1, 1]); Z2 = quad(lambda rr: 2*pi*rr*(1-rr**2)**a2, [0, 1])
w1 = mpf('0.3'); w2 = [mpf('-0.2'), mpf('0.5')]
show("LKJ(3, eta 1.5) at L", a1*log(1-w1**2) + a2*log(1 - w2[0]**2 - w2[1]**2) - log(Z1) - log(Z2))
