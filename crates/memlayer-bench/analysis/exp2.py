from exp import *
import statistics
def zs(lst):
    if not lst: return {}
    xs=[s for _,s in lst]; m=statistics.mean(xs); sd=statistics.pstdev(xs) or 1
    return {d:(s-m)/sd for d,s in lst}
for w in (0.5,0.6,0.7):
  for L in (0.0,0.3):
    print('zscore',w,L,metrics(lambda q:fuse(q,w=w,lift=L,norm=zs)))
# session prior
def fuse_sess(q,w=0.6,lift=0.3,sp=0.2,agg='max',topn=3):
    base=fuse(q,w=w,lift=lift)
    # recompute scores: approximate with rank-based scores
    k=kw[q][:200]; v=vec[q][:200]; kn=minmax(k); vn=minmax(v)
    sc=collections.defaultdict(float)
    for d,s in kn.items(): sc[d]+=w*s
    for d,s in vn.items(): sc[d]+=(1-w)*s
    order=sorted(sc.items(),key=lambda x:(-x[1],x[0]))[:100]
    s=dict(order); best={}
    for d,_ in order:
        p=prev.get(d)
        if p in s:
            best[d]=max(best.get(d,0),s[p]); best[p]=max(best.get(p,0),s[d])
    scored={d:x+lift*best.get(d,0) for d,x in order}
    bys=collections.defaultdict(list)
    for d,x in scored.items(): bys[sess[d]].append(x)
    prior={}
    for se,xs in bys.items():
        xs=sorted(xs,reverse=True)[:topn]
        prior[se]= max(xs) if agg=='max' else sum(xs)/topn
    mx=max(prior.values())
    final={d:x+sp*prior[sess[d]]/mx for d,x in scored.items()}
    return [d for d,_ in sorted(final.items(),key=lambda x:(-x[1],x[0]))]
for sp in (0.05,0.1,0.2,0.3):
  for agg in ('max','mean'):
    print('sess',sp,agg,metrics(lambda q:fuse_sess(q,sp=sp,agg=agg)))
