from bm import *
qt={q:terms(queries[q]['text']) for q in Q}
for k1 in (0.9,1.2):
  for b in (0.2,0.3,0.4,0.5):
    r={q:bm25(qt[q],queries[q]['namespace'],k1=k1,b=b) for q in Q}
    print('k1',k1,'b',b,'kw',metrics(lambda q:[d for d,_ in r[q]]))
    for w in (0.5,0.6,0.7):
      for L in (0.3,0.4):
        print('   w',w,'lift',L,metrics(lambda q:fuse(q,kwl=r,w=w,lift=L)))
