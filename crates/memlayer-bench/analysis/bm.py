import re, math, collections, snowballstemmer
from exp import *
ST=snowballstemmer.stemmer('english'); SW=stopwords()
def terms(t):
    ws=[w.lower() for w in re.split(r'[^0-9A-Za-z\u00C0-\uFFFF]+',t) if w]
    return [ST.stemWord(w) for w in ws if w not in SW]
docs={d['_id']:terms(d['text']) for d in corpus}
byns=collections.defaultdict(list)
for d in corpus: byns[d['namespace']].append(d['_id'])
stats={}
for ns,ids in byns.items():
    df=collections.Counter()
    for i in ids: df.update(set(docs[i]))
    stats[ns]=(len(ids), sum(len(docs[i]) for i in ids)/len(ids), df)
def idf(n,df): return math.log(1+(n-df+0.5)/(df+0.5))
def bm25(qt, ns, k1=1.2, b=0.75, weights=None, extra=None):
    n,avg,df=stats[ns]; out={}
    qset=list(dict.fromkeys(qt))
    for i in byns[ns]:
        tf=collections.Counter(docs[i]); L=len(docs[i]); s=0
        for t in qset:
            if tf[t]:
                w=weights.get(t,1) if weights else 1
                s+=w*idf(n,df[t])*tf[t]*(k1+1)/(tf[t]+k1*(1-b+b*L/avg))
        if s>0: out[i]=s
    return sorted(out.items(),key=lambda x:(-x[1],x[0]))
if __name__=='__main__':
    mine={q:bm25(terms(queries[q]['text']),queries[q]['namespace']) for q in Q}
    print('kw mine',metrics(lambda q:[d for d,_ in mine[q]]))
