from bm import *
qt={q:terms(queries[q]['text']) for q in Q}
for k1,b in [(1.2,0.75),(0.9,0.4),(1.2,0.3),(1.5,0.5),(0.6,0.5),(2.0,0.75)]:
    r={q:bm25(qt[q],queries[q]['namespace'],k1=k1,b=b) for q in Q}
    print('k1',k1,'b',b,'kw',metrics(lambda q:[d for d,_ in r[q]]),'hyb',metrics(lambda q:fuse(q,kwl=r)))
# RM3-style PRF
base={q:bm25(qt[q],queries[q]['namespace']) for q in Q}
for fb_docs,fb_terms,alpha in [(3,5,0.3),(5,10,0.3),(3,10,0.5),(10,10,0.2)]:
    r={}
    for q in Q:
        top=base[q][:fb_docs]
        c=collections.Counter()
        ns=queries[q]['namespace']; n,avg,df=stats[ns]
        for d,s in top:
            tf=collections.Counter(docs[d]); L=len(docs[d])
            for t,f in tf.items():
                c[t]+= (f/L)*s*idf(n,df[t])
        orig=set(qt[q])
        exp=[t for t,_ in c.most_common() if t not in orig][:fb_terms]
        weights={t:1.0 for t in orig}
        tot=sum(c[t] for t in exp) or 1
        for t in exp: weights[t]=alpha*c[t]/tot*len(orig)
        r[q]=bm25(list(orig)+exp,ns,weights=weights)
    print('prf',fb_docs,fb_terms,alpha,'kw',metrics(lambda q:[d for d,_ in r[q]]),'hyb',metrics(lambda q:fuse(q,kwl=r)))
