import json, math, collections, sys
from paths import DATA, DUMP, stopwords
D=DATA+'/locomo-dev/'
corpus=[json.loads(l) for l in open(D+'corpus.jsonl')]
queries={}
for l in open(D+'queries.jsonl'):
    q=json.loads(l); queries[q['_id']]=q
qrels=collections.defaultdict(set)
for i,l in enumerate(open(D+'qrels/test.tsv')):
    if i==0: continue
    a,b,s=l.strip().split('\t')
    if int(s)>0: qrels[a].add(b)
prev={}; nxt={}; sess={}
last=None
for d in corpus:
    s=(d['namespace'],d['metadata']['session'])
    sess[d['_id']]=s
    if last and sess[last]==s:
        prev[d['_id']]=last; nxt[last]=d['_id']
    last=d['_id']
kw={}; vec={}; hyb={}
for l in open(DUMP):
    r=json.loads(l)
    if r['query'] not in qrels: continue
    lst=[(h[0],h[1]) for h in r['hits'] if h[0]!=r['query']]
    {'keyword':kw,'vector':vec,'hybrid':hyb}[r['mode']][r['query']]=lst
Q=[q for q in queries if q in qrels and queries[q]['metadata']['category'] in (1,2,3,4)]
def metrics(rank_fn, qs=Q):
    h1=h5=h10=mrr=0
    for q in qs:
        ranked=rank_fn(q)[:10]; rel=qrels[q]
        hits=[i for i,d in enumerate(ranked) if d in rel]
        if hits:
            f=hits[0]
            h1+= f<1; h5+= f<5; h10+=1; mrr+=1/(f+1)
    n=len(qs)
    return (round(h1/n,4),round(h5/n,4),round(h10/n,4),round(mrr/n,4))
def minmax(lst):
    if not lst: return {}
    lo=min(s for _,s in lst); hi=max(s for _,s in lst); sp=hi-lo
    return {d:((s-lo)/sp if sp>0 else 1.0) for d,s in lst}
def fuse(q,w=0.6,pool=200,lift=0.3,head=100,norm=minmax,kwl=None,vl=None):
    k=(kwl or kw)[q][:pool]; v=(vl or vec)[q][:pool]
    kn=norm(k); vn=norm(v)
    sc=collections.defaultdict(float)
    for d,s in kn.items(): sc[d]+=w*s
    for d,s in vn.items(): sc[d]+=(1-w)*s
    order=sorted(sc.items(),key=lambda x:(-x[1],x[0]))[:head]
    if lift>0:
        s=dict(order); best={}
        for d,_ in order:
            p=prev.get(d)
            if p in s:
                best[d]=max(best.get(d,0),s[p]); best[p]=max(best.get(p,0),s[d])
        order=sorted(((d,x+lift*best.get(d,0)) for d,x in order),key=lambda x:(-x[1],x[0]))
    return [d for d,_ in order]
if __name__=='__main__':
    print('kw',metrics(lambda q:[d for d,_ in kw[q]]))
    print('vec',metrics(lambda q:[d for d,_ in vec[q]]))
    print('hyb dump',metrics(lambda q:[d for d,_ in hyb[q]]))
    print('hyb sim',metrics(lambda q:fuse(q)))
